"""Fully connected networks: Goodfellow et al.'s MLP GAN on flattened images, and the 2-D toy pair."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from gancli.core.errors import GanError
from gancli.core.rules import POSITIVE, number, one_of
from gancli.data.base import Field
from gancli.nets.layers import SignedSigmoid, UnitInput, _weight, activation, maybe_spectral, norm_layer, normal_init

INITS = ("default", "he_uniform", "normal")
OUTPUTS = ("tanh", "sigmoid")
INPUT_RANGES = ("signed", "unit")
BOOL = one_of("true", "false", "True", "False")


def _check(key: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise GanError(f"MLP {key} '{value}' is not one of: {', '.join(choices)}.")
    return value


def _check_init(init: str) -> str:
    return _check("init", init, INITS)


@torch.no_grad()
def he_uniform_init(hidden: nn.Module, output: nn.Linear | None = None) -> None:
    """The init of the WGAN-GP authors' toy code (tflib's Linear): every Linear in `hidden` (those before a
    ReLU) U(±√3·√(2/fan_in)) ("he"), the `output` layer Glorot-uniform U(±√3·√(2/(fan_in + fan_out))),
    biases 0. PyTorch's default draws weights and biases from U(±1/√fan_in)."""
    for m in hidden.modules():
        if isinstance(m, nn.Linear) and m is not output:
            nn.init.kaiming_uniform_(_weight(m), nonlinearity="relu")  # bound √(6 / fan_in)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    if output is not None:
        nn.init.xavier_uniform_(_weight(output))
        if output.bias is not None:
            nn.init.zeros_(output.bias)


def _he_uniform_head(layer: nn.Module) -> None:
    """The Critic's output and auxiliary layers under init=he_uniform: output layers, Glorot-uniform."""
    if isinstance(layer, nn.Linear):
        he_uniform_init(nn.Sequential(), layer)


DROPOUT = number(0, 1, hi_open=True)
# the keys both MLPs share: init (default: PyTorch's | he_uniform | normal: N(0, init_std), biases 0) and
# affine=false (no bias in any layer, BatchNorm without scale and shift: BiGAN's code, --nobias --nogain)
SHARED_RULES = {"dropout": DROPOUT, "init": one_of(*INITS), "init_std": POSITIVE, "affine": BOOL}


def _stack(sizes: list[int], act: str, norm: str, dropout: float, first_norm: bool, affine: bool) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(maybe_spectral(nn.Linear(a, b, bias=affine), norm))
        if i > 0 or first_norm:
            layers.append(norm_layer(norm, b, False, affine))
        layers.append(activation(act))
        if dropout:
            layers.append(nn.Dropout(dropout))
    return layers


class MLPGenerator(nn.Module):
    """z → hidden layers → sample; tanh output for images (data in [-1, 1]), linear for points.
    init: default (PyTorch's) | he_uniform (`he_uniform_init`) | normal (N(0, init_std), biases 0).
    output=sigmoid: a generator made for [0, 1] data, its output stored as 2·σ(a) − 1 (see `SignedSigmoid`).
    z_skip: z also enters every hidden layer after the first through a linear map of its own (no bias),
    added before that layer's norm (BiGAN's code, `deconvnet_mnist_mlp`)."""

    config_rules = {**SHARED_RULES, "output": one_of(*OUTPUTS), "z_skip": BOOL}

    def __init__(
        self,
        spec: Field,
        z_dim: int,
        hidden=(256, 512, 1024),
        act: str = "relu",
        norm: str = "none",
        dropout: float = 0.0,
        init: str = "default",
        init_std: float = 0.02,
        affine: bool = True,
        output: str = "tanh",
        z_skip: bool = False,
    ):
        super().__init__()
        self.shape = tuple(spec.shape)
        out = math.prod(self.shape)
        layers = _stack([z_dim, *hidden], act, norm, dropout, first_norm=True, affine=affine)
        last = nn.Linear(hidden[-1], out, bias=affine)
        layers.append(last)
        if spec.kind == "image":
            layers.append(SignedSigmoid() if _check("output", output, OUTPUTS) == "sigmoid" else nn.Tanh())
        self.net = nn.Sequential(*layers)
        self.z_dim = z_dim
        # z_skip: the Sequential index of each later hidden Linear → its own map of z
        linears = [i for i, m in enumerate(layers) if isinstance(m, nn.Linear) and m is not last]
        self.skip_at = {j: k for k, j in enumerate(linears[1:])} if z_skip else {}
        self.skips = nn.ModuleList(nn.Linear(z_dim, hidden[k + 1], bias=False) for k in range(len(self.skip_at)))
        if _check_init(init) == "he_uniform":
            he_uniform_init(self.net, last)
        elif init == "normal":
            normal_init(self, float(init_std))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not self.skip_at:
            return self.net(z).view(z.shape[0], *self.shape)
        h = z
        for j, m in enumerate(self.net):
            h = m(h)
            if j in self.skip_at:
                h = h + self.skips[self.skip_at[j]](z)
        return h.view(z.shape[0], *self.shape)


class MLPDiscriminator(nn.Module):
    """The fully connected body: sample → features (B, feature_dim); `nets.critic.Critic` adds the heads.
    init: default (PyTorch's) | he_uniform (`he_uniform_init`: the hidden layers here, the Critic's output
    and auxiliary layers as output layers through `init_head`) | normal (N(0, init_std) here and in the
    heads). input_range=unit: a body made for [0, 1] data, reading (x + 1) / 2 (see `UnitInput`)."""

    config_rules = {**SHARED_RULES, "input_range": one_of(*INPUT_RANGES)}

    flat_input = True  # a conditioning label is appended to the flattened sample, not as image planes

    def __init__(
        self,
        spec: Field,
        hidden=(1024, 512, 256),
        act: str = "leaky_relu",
        norm: str = "none",
        dropout: float = 0.0,
        init: str = "default",
        init_std: float = 0.02,
        affine: bool = True,
        input_range: str = "signed",
    ):
        super().__init__()
        unit = _check("input_range", input_range, INPUT_RANGES) == "unit"
        self.prep = UnitInput() if unit else nn.Identity()  # no weights: the state dict's keys stay the same
        layers = _stack([math.prod(spec.shape), *hidden], act, norm, dropout, first_norm=False, affine=affine)
        self.body = nn.Sequential(*layers)
        self.feature_dim = hidden[-1]
        self.affine = affine  # heads built on this body (the encoder's, D(x, z)'s) follow it
        if _check_init(init) == "he_uniform":
            he_uniform_init(self.body)
            self.init_head = _he_uniform_head
        elif init == "normal":
            std = float(init_std)
            normal_init(self.body, std)
            self.init_head = lambda layer: normal_init(layer, std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.prep(x).flatten(1))


from gancli.nets.builders import DISCRIMINATORS, GENERATORS  # noqa: E402

GENERATORS.register("mlp")(MLPGenerator)
DISCRIMINATORS.register("mlp")(MLPDiscriminator)
