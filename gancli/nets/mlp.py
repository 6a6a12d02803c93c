"""Fully connected networks: Goodfellow et al.'s MLP GAN on flattened images, and the 2-D toy pair."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from gancli.core.rules import number
from gancli.data.base import Field
from gancli.nets.layers import activation, maybe_spectral, norm_layer


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
    """z → hidden layers → sample; tanh output for images (data in [-1, 1]), linear for points."""

    config_rules = {"dropout": DROPOUT}

    def __init__(self, spec: Field, z_dim: int, hidden=(256, 512, 1024), act: str = "relu", norm: str = "none",
                 dropout: float = 0.0):
        super().__init__()
        self.shape = tuple(spec.shape)
        out = math.prod(self.shape)
        layers = _stack([z_dim, *hidden], act, norm, dropout, first_norm=True)
        layers.append(nn.Linear(hidden[-1], out))
        if spec.kind == "image":
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        self.z_dim = z_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.shape)


class MLPDiscriminator(nn.Module):
    """The fully connected body: sample → features (B, feature_dim); `nets.critic.Critic` adds the heads."""

    config_rules = {"dropout": DROPOUT}

    flat_input = True  # a conditioning label is appended to the flattened sample, not as image planes

    def __init__(self, spec: Field, hidden=(1024, 512, 256), act: str = "leaky_relu", norm: str = "none",
                 dropout: float = 0.0):
        super().__init__()
        layers = _stack([math.prod(spec.shape), *hidden], act, norm, dropout, first_norm=False)
        self.body = nn.Sequential(*layers)
        self.feature_dim = hidden[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.flatten(1))


from gancli.nets.builders import DISCRIMINATORS, GENERATORS  # noqa: E402

GENERATORS.register("mlp")(MLPGenerator)
DISCRIMINATORS.register("mlp")(MLPDiscriminator)
