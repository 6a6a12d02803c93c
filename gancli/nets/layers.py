"""Small shared pieces: normalisation and activation by name, DCGAN weight init, and the two modules that let
a network made for data in [0, 1] run on gancli's [-1, 1] images."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from gancli.core.errors import GanError

NORMS = ("batch", "layer", "instance", "spectral", "none")


def norm_layer(name: str, channels: int, conv: bool, affine: bool = True) -> nn.Module:
    """A normalisation after a layer; 'spectral' and 'none' add nothing here (spectral wraps the layer).
    affine=False: BatchNorm without its learned scale and shift (BiGAN's code: --nogain --nobias)."""
    if name == "batch":
        return nn.BatchNorm2d(channels, affine=affine) if conv else nn.BatchNorm1d(channels, affine=affine)
    if name == "layer":
        return nn.GroupNorm(1, channels) if conv else nn.LayerNorm(channels)
    if name == "instance":
        return nn.InstanceNorm2d(channels, affine=True) if conv else nn.Identity()
    if name in ("spectral", "none"):
        return nn.Identity()
    raise GanError(f"unknown norm '{name}'; choose one of: {', '.join(NORMS)}.")


def maybe_spectral(layer: nn.Module, norm: str) -> nn.Module:
    return spectral_norm(layer) if norm == "spectral" else layer


def _weight(m: nn.Module) -> torch.Tensor:
    """The trainable weight: under spectral norm `m.weight` is recomputed, the parameter is `original`."""
    if parametrize.is_parametrized(m, "weight"):
        return m.parametrizations.weight.original
    return m.weight


ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(0.2, inplace=True),
    "elu": lambda: nn.ELU(inplace=True),
    "tanh": nn.Tanh,
    "silu": lambda: nn.SiLU(inplace=True),
}


def activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise GanError(f"unknown activation '{name}'; choose one of: {', '.join(ACTIVATIONS)}.") from None


def dcgan_init(module: nn.Module) -> None:
    """Radford et al.: conv weights ~ N(0, 0.02); norm scales ~ N(1, 0.02), shifts 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            with torch.no_grad():
                nn.init.normal_(_weight(m), 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


@torch.no_grad()
def normal_init(module: nn.Module, std: float) -> None:
    """Every linear and conv weight N(0, std), biases 0 (the AAE reproduction: 0.01; BiGAN's code: 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(_weight(m), 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class SignedSigmoid(nn.Module):
    """A sigmoid output (data in [0, 1]) expressed in gancli's [-1, 1] units: 2·σ(a) − 1."""

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return 2 * torch.sigmoid(a) - 1


class UnitInput(nn.Module):
    """What a network made for [0, 1] data sees of gancli's [-1, 1] images: (x + 1) / 2."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + 1) / 2
