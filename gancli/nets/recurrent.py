"""Recurrent networks for sequences (Esteban et al. 2017, RGAN / RCGAN): G reads a latent vector at every
time step and emits every channel's value at every step; D reads the sequence and gives a real/fake logit
at every step. A class condition (one-hot or a learned embedding) is concatenated to both networks' inputs
at every step."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from gancli.data.base import Field
from gancli.core.errors import GanError

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


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

    def __init__(self, field: Field, z_dim: int, hidden: int = 100, layers: int = 1, cell: str = "lstm",
                 num_classes: int = 0, condition: str = "onehot", embed_dim: int = 0, tanh: bool = True):
        super().__init__()
        self.steps, self.channels = _need_sequence(field, "recurrent")
        self.cond = Condition(num_classes, condition, embed_dim or num_classes)
        self.rnn = _rnn(cell, z_dim + self.cond.dim, hidden, layers)
        self.out = nn.Linear(hidden, self.channels)
        self.tanh = tanh
        self.z_dim = z_dim

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.cond.dim:
            z = torch.cat([z, self.cond(labels, z.shape[1], z.dtype)], -1)
        h, _ = self.rnn(z)
        x = self.out(h)
        return torch.tanh(x) if self.tanh else x


class RecurrentCritic(nn.Module):
    """(B, T, C) [+ the class at every step] → RNN → a logit per step (B, T); the last step's hidden state is
    the features (feature matching reads them)."""

    def __init__(self, field: Field, hidden: int = 100, layers: int = 1, cell: str = "lstm",
                 bidirectional: bool = False, num_classes: int = 0, condition: str = "concat", embed_dim: int = 0):
        super().__init__()
        _, channels = _need_sequence(field, "recurrent")
        self.cond = Condition(num_classes, "onehot" if condition == "concat" else condition, embed_dim or num_classes)
        self.rnn = _rnn(cell, channels + self.cond.dim, hidden, layers, bidirectional)
        width = hidden * (2 if bidirectional else 1)
        self.out = nn.Linear(width, 1)
        self.feature_dim = width

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cond.dim:
            x = torch.cat([x, self.cond(labels, x.shape[1], x.dtype)], -1)
        h, _ = self.rnn(x)
        return self.out(h).squeeze(-1), h[:, -1]
