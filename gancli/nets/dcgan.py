"""DCGAN (Radford et al. 2015): transposed-conv generator and strided-conv discriminator, any resolution
R = s0·2^k with a start size s0 ≥ 4 (28 → 7·2², 32 → 4·2³, 64 → 4·2⁴, 128 → 4·2⁵).

`fc` > 0 adds one fully connected hidden layer of that width between the latent and the first feature
map in G, and after the last conv in D: the InfoGAN paper's MNIST nets (FC-1024 on both sides).

gancli keeps images in [-1, 1] everywhere outside the networks. A network pair that works in [0, 1]
(InfoGAN's code: a sigmoid output, D reading [0, 1] pixels) is `generator.output=sigmoid` with
`discriminator.input_range=unit`: G stores 2·σ(a) − 1 and D maps its input back with (x + 1) / 2, so both
compute exactly what the [0, 1] networks compute."""

from __future__ import annotations

import torch
import torch.nn as nn

from gancli.core.errors import GanError
from gancli.core.rules import COUNT, NONNEG_INT, number, one_of
from gancli.data.base import Field
from gancli.nets.builders import DISCRIMINATORS, GENERATORS
from gancli.nets.layers import SignedSigmoid, UnitInput, dcgan_init, maybe_spectral, norm_layer


def pyramid(resolution: int) -> tuple[int, int]:
    """(start size s0, number of 2× stages k): the most stages that keep s0 ≥ 4 and integral."""
    k = 0
    while resolution % 2 ** (k + 1) == 0 and resolution // 2 ** (k + 1) >= 4:
        k += 1
    if k == 0:
        raise GanError(f"resolution {resolution} is too small or odd for DCGAN networks (use 28, 32, 64, 128, ...).")
    return resolution // 2**k, k


def _widths(width: int, max_width: int, k: int) -> list[int]:
    """Channels from the finest stage outwards: width, 2·width, ... capped at max_width."""
    return [min(width * 2**i, max_width) for i in range(k)]


def _need_image(spec: Field, who: str) -> None:
    if spec.kind != "image":
        raise GanError(f"{who} networks need image data, but this field holds {spec.kind}; use arch=mlp.")


UPSAMPLES = ("transposed", "nearest")
OUTPUTS = ("tanh", "sigmoid")
INPUT_RANGES = ("signed", "unit")


def _choice(key: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise GanError(f"model.{key}='{value}' is not one of: {', '.join(choices)}.")
    return value


def _up(a: int, b: int, upsample: str, bias: bool) -> list[nn.Module]:
    """One 2× stage: the paper's 4×4 stride-2 transposed conv, or nearest-neighbour upsampling then a
    3×3 conv (Odena et al. 2016: no checkerboard artefacts)."""
    if upsample == "transposed":
        return [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=bias)]
    if upsample == "nearest":
        return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(a, b, 3, 1, 1, bias=bias)]
    raise GanError(f"model.generator.upsample='{upsample}' is not one of: {', '.join(UPSAMPLES)}.")


SIZES = {"width": COUNT, "max_width": COUNT, "fc": NONNEG_INT}


class DCGANGenerator(nn.Module):
    """Latent → s0×s0 map (one transposed conv, or FC layers with `fc`) → 2× stages to the resolution,
    BatchNorm and ReLU between them, tanh out (or a sigmoid: `output`)."""

    config_rules = {**SIZES, "output": one_of(*OUTPUTS), "upsample": one_of(*UPSAMPLES)}

    def __init__(
        self,
        spec: Field,
        z_dim: int,
        width: int = 64,
        max_width: int = 512,
        norm: str = "batch",
        upsample: str = "transposed",
        fc: int = 0,
        output: str = "tanh",
    ):
        super().__init__()
        _need_image(spec, "DCGAN")
        out = SignedSigmoid() if _choice("generator.output", output, OUTPUTS) == "sigmoid" else nn.Tanh()
        c, r, _ = spec.shape
        s0, k = pyramid(r)
        ch = _widths(width, max_width, k)[::-1]  # coarse → fine
        # z → FC → FC to the s0×s0 map (Chen et al.), or one s0×s0 transposed conv (Radford et al.)
        self.stem = (
            nn.Sequential(
                nn.Linear(z_dim, fc, bias=False),
                norm_layer(norm, fc, False),
                nn.ReLU(True),
                nn.Linear(fc, ch[0] * s0 * s0, bias=False),
                norm_layer(norm, ch[0] * s0 * s0, False),
                nn.ReLU(True),
                nn.Unflatten(1, (ch[0], s0, s0)),
            )
            if fc
            else None
        )
        layers = (
            []
            if fc
            else [nn.ConvTranspose2d(z_dim, ch[0], s0, 1, 0, bias=False), norm_layer(norm, ch[0], True), nn.ReLU(True)]
        )
        for a, b in zip(ch[:-1], ch[1:]):
            layers += [*_up(a, b, upsample, bias=False), norm_layer(norm, b, True), nn.ReLU(True)]
        layers += [*_up(ch[-1], c, upsample, bias=True), out]
        self.net = nn.Sequential(*layers)
        self.z_dim = z_dim
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.stem is not None:
            return self.net(self.stem(z.flatten(1)))
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    """The strided-conv body: image → flattened features (B, feature_dim). `nets.critic.Critic` adds
    the output head(s), so every family (plain, conditional, auxiliary classifier, Q) shares one body."""

    config_rules = {**SIZES, "leak": number(0, 1, hi_open=True), "input_range": one_of(*INPUT_RANGES)}

    def __init__(
        self,
        spec: Field,
        width: int = 64,
        max_width: int = 512,
        norm: str = "batch",
        fc: int = 0,
        leak: float = 0.2,
        input_range: str = "signed",
    ):
        super().__init__()
        _need_image(spec, "DCGAN")
        unit = _choice("discriminator.input_range", input_range, INPUT_RANGES) == "unit"
        self.prep = UnitInput() if unit else nn.Identity()  # no weights: the state dict's keys stay the same
        if not 0 <= leak < 1:
            raise GanError(f"model.discriminator.leak={leak}: the LeakyReLU slope must be in [0, 1).")
        self.leak = leak  # Radford et al. 0.2; InfoGAN's original code 0.01 (the Critic's heads follow it)
        c, r, _ = spec.shape
        s0, k = pyramid(r)
        ch = _widths(width, max_width, k)  # fine → coarse
        layers = [maybe_spectral(nn.Conv2d(c, ch[0], 4, 2, 1), norm), nn.LeakyReLU(leak, True)]  # no norm on input
        for a, b in zip(ch[:-1], ch[1:]):
            layers += [
                maybe_spectral(nn.Conv2d(a, b, 4, 2, 1, bias=norm in ("none", "spectral")), norm),
                norm_layer(norm, b, True),
                nn.LeakyReLU(leak, True),
            ]
        self.body = nn.Sequential(*layers)
        self.feature_dim = ch[-1] * s0 * s0
        self.fc = (
            nn.Sequential(
                maybe_spectral(nn.Linear(self.feature_dim, fc, bias=norm in ("none", "spectral")), norm),
                norm_layer(norm, fc, False),
                nn.LeakyReLU(leak, True),
            )
            if fc
            else None
        )
        if fc:
            self.feature_dim = fc
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(self.prep(x)).flatten(1)
        return self.fc(h) if self.fc is not None else h

    @staticmethod
    def init_head(heads: nn.Module) -> None:
        """The Critic's output and auxiliary layers get the same N(0, 0.02) init as the body."""
        dcgan_init(heads)


GENERATORS.register("dcgan")(DCGANGenerator)
DISCRIMINATORS.register("dcgan")(DCGANDiscriminator)
