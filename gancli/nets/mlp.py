"""Fully connected networks: Goodfellow et al.'s MLP GAN on flattened images, and the 2-D toy pair."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from gancli.core.errors import GanError
from gancli.core.rules import number, one_of
from gancli.data.base import Field
from gancli.nets.layers import _weight, activation, maybe_spectral, norm_layer

INITS = ("default", "he_uniform")


def _check_init(init: str) -> str:
    if init not in INITS:
        raise GanError(f"MLP init '{init}' is not one of: {', '.join(INITS)}.")
    return init


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


def _stack(sizes: list[int], act: str, norm: str, dropout: float, first_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(maybe_spectral(nn.Linear(a, b), norm))
        if i > 0 or first_norm:
            layers.append(norm_layer(norm, b, False))
        layers.append(activation(act))
        if dropout:
            layers.append(nn.Dropout(dropout))
    return layers


class MLPGenerator(nn.Module):
    """z → hidden layers → sample; tanh output for images (data in [-1, 1]), linear for points.
    init: default (PyTorch's) | he_uniform (`he_uniform_init`)."""

    config_rules = {"dropout": DROPOUT, "init": one_of(*INITS)}

    def __init__(
        self,
        spec: Field,
        z_dim: int,
        hidden=(256, 512, 1024),
        act: str = "relu",
        norm: str = "none",
        dropout: float = 0.0,
        init: str = "default",
    ):
        super().__init__()
        self.shape = tuple(spec.shape)
        out = math.prod(self.shape)
        layers = _stack([z_dim, *hidden], act, norm, dropout, first_norm=True)
        last = nn.Linear(hidden[-1], out)
        layers.append(last)
        if spec.kind == "image":
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        self.z_dim = z_dim
        if _check_init(init) == "he_uniform":
            he_uniform_init(self.net, last)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.shape)


class MLPDiscriminator(nn.Module):
    """The fully connected body: sample → features (B, feature_dim); `nets.critic.Critic` adds the heads.
    init: default (PyTorch's) | he_uniform (`he_uniform_init`: the hidden layers here, the Critic's output
    and auxiliary layers as output layers through `init_head`)."""

    config_rules = {"dropout": DROPOUT, "init": one_of(*INITS)}

    flat_input = True  # a conditioning label is appended to the flattened sample, not as image planes

    def __init__(
        self,
        spec: Field,
        hidden=(1024, 512, 256),
        act: str = "leaky_relu",
        norm: str = "none",
        dropout: float = 0.0,
        init: str = "default",
    ):
        super().__init__()
        layers = _stack([math.prod(spec.shape), *hidden], act, norm, dropout, first_norm=False)
        self.body = nn.Sequential(*layers)
        self.feature_dim = hidden[-1]
        if _check_init(init) == "he_uniform":
            he_uniform_init(self.body)
            self.init_head = _he_uniform_head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.flatten(1))


from gancli.nets.builders import DISCRIMINATORS, GENERATORS  # noqa: E402

GENERATORS.register("mlp")(MLPGenerator)
DISCRIMINATORS.register("mlp")(MLPDiscriminator)
