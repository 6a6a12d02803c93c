"""Recurrent networks for sequences (Esteban et al. 2017, RGAN / RCGAN): G reads a latent vector at every
time step and emits every channel's value at every step; D reads the sequence and gives a real/fake logit
at every step. A class condition (one-hot or a learned embedding) is concatenated to both networks' inputs
at every step.

`init`: `tf` (the default) starts the weights as the authors' TensorFlow code does (ratschlab/RGAN,
model.py): the output layer's weight and bias from a normal of std 1 cut at ±2 (TF's
truncated_normal_initializer()), the recurrent weights Glorot-uniform over the [input, state] → gates
matrix (TF's default initializer), and the LSTM gate biases of TF's LSTMCell: G's cell starts every gate bias at
1.0 (bias_start=1.0 in their modified cell) and, like D's (bias 0), adds forget_bias=1.0 to the forget gate,
so G's forget gate starts at 2, its other gates at 1, D's forget gate at 1 and its other gates at 0.
(A GRU gets TF's GRUCell biases: 1.0 on the reset and update gates.) `torch` keeps PyTorch's defaults.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from gancli.core.errors import GanError
from gancli.data.base import Field

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}
INITS = ("tf", "torch")
TF_FORGET_BIAS = 1.0  # TF's LSTMCell adds it to the forget gate's pre-activation


def _check_init(init: str) -> None:
    if init not in INITS:
        raise GanError(
            f"init='{init}' is not one of: tf (the authors' TensorFlow initialisation), torch (PyTorch's defaults)."
        )


@torch.no_grad()
def tf_init(rnn: nn.Module, out: nn.Linear, bias_start: float) -> None:
    """The authors' initialisation (see the module's docstring): `bias_start` on every gate bias (G: 1.0,
    D: 0.0), plus TF's forget_bias on an LSTM's forget gate; PyTorch's two bias vectors add up, so the
    values go in bias_ih and bias_hh is 0."""
    nn.init.trunc_normal_(out.weight, 0.0, 1.0, -2.0, 2.0)
    nn.init.trunc_normal_(out.bias, 0.0, 1.0, -2.0, 2.0)
    hidden = rnn.hidden_size
    params = dict(rnn.named_parameters())
    for name, p in params.items():
        if name.startswith("weight_"):
            n_in = params[name.replace("weight_hh", "weight_ih")].shape[1]  # this layer's input width
            bound = (6.0 / (n_in + hidden + p.shape[0])) ** 0.5  # Glorot over [x, h] → gates
            nn.init.uniform_(p, -bound, bound)
        elif name.startswith("bias_hh"):
            p.zero_()
        elif name.startswith("bias_ih"):
            if isinstance(rnn, nn.LSTM):  # gates i, f, g, o
                p.fill_(bias_start)
                p[hidden : 2 * hidden] += TF_FORGET_BIAS
            else:  # GRU: r, z, n
                p.zero_()
                p[: 2 * hidden] = 1.0


def _rnn(cell: str, n_in: int, hidden: int, layers: int, bidirectional: bool = False) -> nn.Module:
    if cell not in CELLS:
        raise GanError(f"unknown recurrent cell '{cell}'; choose one of: {', '.join(CELLS)}.")
    if hidden < 1 or layers < 1:
        raise GanError(f"hidden={hidden} and layers={layers} must be ≥ 1.")
    return CELLS[cell](n_in, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional)


def _need_sequence(field: Field, who: str) -> tuple[int, int]:
    if field.kind != "sequence":
        raise GanError(f"{who} networks model sequences, but this field holds {field.kind}.")
    return field.shape


class Condition(nn.Module):
    """The class as a per-step input: one-hot, or a learned embedding (`embed_dim` wide)."""

    def __init__(self, num_classes: int, condition: str, embed_dim: int):
        super().__init__()
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, embed_dim) if condition == "embedding" else None
        self.dim = (embed_dim if self.embed is not None else num_classes) if num_classes else 0

    def forward(self, labels: torch.Tensor, steps: int, dtype) -> torch.Tensor:
        c = self.embed(labels) if self.embed is not None else F.one_hot(labels, self.num_classes).to(dtype)
        return c.unsqueeze(1).expand(-1, steps, -1)


class RecurrentGenerator(nn.Module):
    """(B, T, z) noise [+ the class at every step] → RNN → linear → (B, T, C); tanh out (data in [−1, 1])."""

    def __init__(
        self,
        field: Field,
        z_dim: int,
        hidden: int = 100,
        layers: int = 1,
        cell: str = "lstm",
        num_classes: int = 0,
        condition: str = "onehot",
        embed_dim: int = 0,
        tanh: bool = True,
        init: str = "tf",
    ):
        super().__init__()
        _check_init(init)
        self.steps, self.channels = _need_sequence(field, "recurrent")
        self.cond = Condition(num_classes, condition, embed_dim or num_classes)
        self.rnn = _rnn(cell, z_dim + self.cond.dim, hidden, layers)
        self.out = nn.Linear(hidden, self.channels)
        if init == "tf":
            tf_init(self.rnn, self.out, bias_start=1.0)
        self.tanh = tanh
        self.z_dim = z_dim

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.cond.dim:
            z = torch.cat([z, self.cond(labels, z.shape[1], z.dtype)], -1)
        h, _ = self.rnn(z, self._zero_state(z) if torch.jit.is_tracing() else None)
        x = self.out(h)
        return torch.tanh(x) if self.tanh else x

    def _zero_state(self, z: torch.Tensor):
        """The zero initial state the RNN makes by default, made from z: a traced file then follows its input to
        any device (the RNN's own is made on the device seen while tracing)."""
        h0 = z.new_zeros(self.rnn.num_layers, z.shape[0], self.rnn.hidden_size)
        return (h0, h0) if isinstance(self.rnn, nn.LSTM) else h0


class RecurrentCritic(nn.Module):
    """(B, T, C) [+ the class at every step] → RNN → a logit per step (B, T); the last step's hidden state is
    the features (feature matching reads them)."""

    def __init__(
        self,
        field: Field,
        hidden: int = 100,
        layers: int = 1,
        cell: str = "lstm",
        bidirectional: bool = False,
        num_classes: int = 0,
        condition: str = "concat",
        embed_dim: int = 0,
        init: str = "tf",
    ):
        super().__init__()
        _check_init(init)
        _, channels = _need_sequence(field, "recurrent")
        self.cond = Condition(num_classes, "onehot" if condition == "concat" else condition, embed_dim or num_classes)
        self.rnn = _rnn(cell, channels + self.cond.dim, hidden, layers, bidirectional)
        width = hidden * (2 if bidirectional else 1)
        self.out = nn.Linear(width, 1)
        if init == "tf":
            tf_init(self.rnn, self.out, bias_start=0.0)
        self.feature_dim = width

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cond.dim:
            x = torch.cat([x, self.cond(labels, x.shape[1], x.dtype)], -1)
        h, _ = self.rnn(x)
        return self.out(h).squeeze(-1), h[:, -1]
