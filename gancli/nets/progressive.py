"""Progressive GAN networks (Karras et al. 2018): layers with an equalised learning rate, pixelwise feature
normalisation, the minibatch-stddev layer, and a G and D that run at any level of detail with a fade α.

Level k works at 4·2^k px. Both networks hold every level's layers from the start (as the reference code
builds its whole graph); `level` and `alpha` choose how far a forward pass goes. During a fade into level k,
G's output blends the new 1×1 toRGB of level k with the previous level's image, nearest-upsampled; D's input
path blends the new fromRGB + block with the old fromRGB of the average-pooled image. At α = 0 the grown
networks compute exactly what the previous level's did.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from gancli.core.errors import GanError


class EqualizedLinear(nn.Module):
    """y = x·(w·c)ᵀ + b, w ~ N(0, 1) and c = gain / √fan_in applied at run time, so Adam's per-parameter step
    is the same relative change for every layer (ProGAN §4.1). lr_mul scales both (StyleGAN's mapping net)."""

    def __init__(
        self,
        n_in: int,
        n_out: int,
        gain: float = math.sqrt(2),
        lr_mul: float = 1.0,
        bias_init: float = 0.0,
        bias: bool = True,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in) / lr_mul)
        self.bias = nn.Parameter(torch.full((n_out,), float(bias_init) / lr_mul)) if bias else None
        self.scale, self.lr_mul = gain / math.sqrt(n_in) * lr_mul, lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, None if self.bias is None else self.bias * self.lr_mul)


class EqualizedConv2d(nn.Module):
    """A k×k 'same' convolution with the run-time He scale gain / √(in·k·k)."""

    def __init__(self, n_in: int, n_out: int, kernel: int, gain: float = math.sqrt(2), bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None
        self.scale, self.pad = gain / math.sqrt(n_in * kernel * kernel), kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.pad)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Each pixel's feature vector to unit RMS (ProGAN §4.2)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


class MinibatchStdDev(nn.Module):
    """One more feature map: the std of each feature over a group of `group` samples, averaged over
    features and pixels, broadcast to every pixel (ProGAN §3)."""

    def __init__(self, group: int = 4):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = min(self.group, b)
        if b % g:
            raise GanError(f"the minibatch-stddev layer groups {g} samples, which must divide the batch ({b}).")
        y = x.float().view(g, -1, c, h, w)
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (b / g,)
        y = y.view(-1, 1, 1, 1).repeat(g, 1, h, w).to(x.dtype)
        return torch.cat([x, y], 1)


def level_count(resolution: int) -> int:
    levels = math.log2(resolution / 4)
    if resolution < 4 or levels != int(levels):
        raise GanError(
            f"progressive growing doubles from 4×4, so dataset.resolution must be 4·2^k (8, 16, 32, 64, "
            f"128, ...); got {resolution}."
        )
    return int(levels) + 1


def widths(levels: int, width: int, max_width: int) -> list[int]:
    """Channels per level, coarse → fine: `width` at the finest level, doubling per level down, capped."""
    return [min(width * 2 ** (levels - 1 - k), max_width) for k in range(levels)]


def faded_rgb(
    to_rgb: nn.ModuleList, h: torch.Tensor, prev: torch.Tensor | None, level: int, alpha: float
) -> torch.Tensor:
    """A growing G's image at `level`: its toRGB of h, blended during a fade (prev: the previous level's
    maps, else None) with the previous level's image, nearest-upsampled."""
    out = to_rgb[level](h)
    if prev is not None:
        out = torch.lerp(F.interpolate(to_rgb[level - 1](prev), scale_factor=2, mode="nearest"), out, alpha)
    return out


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class ProGenerator(nn.Module):
    def __init__(self, z_dim: int, channels: int, resolution: int, width: int = 16, max_width: int = 512):
        super().__init__()
        self.levels, self.z_dim = level_count(resolution), z_dim
        ch = widths(self.levels, width, max_width)
        self.ch = ch
        self.dense = EqualizedLinear(
            z_dim, ch[0] * 16, gain=math.sqrt(2) / 4, bias=False
        )  # the reference's 4×4 "dense" ...
        self.dense_bias = nn.Parameter(torch.zeros(ch[0]))  # ... one bias per channel
        self.blocks = nn.ModuleList([EqualizedConv2d(ch[0], ch[0], 3)])
        self.blocks.extend(
            nn.ModuleList([EqualizedConv2d(a, b, 3), EqualizedConv2d(b, b, 3)]) for a, b in zip(ch[:-1], ch[1:])
        )
        self.to_rgb = nn.ModuleList(EqualizedConv2d(c, channels, 1, gain=1.0) for c in ch)
        # where training is, kept with the weights so a checkpoint samples at its own level and fade
        self.register_buffer("progress", torch.tensor([float(self.levels - 1), 1.0]))

    def trained_at(self) -> tuple[int, float]:
        """(level, α) the weights were last trained at (one host read: for sampling, not for training)."""
        level, alpha = self.progress.tolist()
        return int(level), float(alpha)

    def _block(self, k: int, h: torch.Tensor) -> torch.Tensor:
        if k == 0:
            return pixel_norm(_lrelu(self.blocks[0](h)))
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        for conv in self.blocks[k]:
            h = pixel_norm(_lrelu(conv(h)))
        return h

    def forward(self, z: torch.Tensor, level: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        level = self.levels - 1 if level is None else level
        h = self.dense(pixel_norm(z)).view(z.shape[0], self.ch[0], 4, 4) + self.dense_bias.view(1, -1, 1, 1)
        h = pixel_norm(_lrelu(h))
        prev = None
        for k in range(level + 1):
            if k == level and alpha < 1 and k > 0:
                prev = h
            h = self._block(k, h)
        return faded_rgb(self.to_rgb, h, prev, level, alpha)


class ProDiscriminator(nn.Module):
    def __init__(self, channels: int, resolution: int, width: int = 16, max_width: int = 512, mbstd_group: int = 4):
        super().__init__()
        self.levels = level_count(resolution)
        ch = widths(self.levels, width, max_width)
        self.from_rgb = nn.ModuleList(EqualizedConv2d(channels, c, 1) for c in ch)
        # blocks[k] takes level k's maps (ch[k]) down to level k − 1's (ch[k − 1]); blocks[0] is the 4×4 head
        self.blocks = nn.ModuleList(
            [
                nn.ModuleList(
                    [
                        EqualizedConv2d(ch[0] + 1, ch[0], 3),
                        EqualizedLinear(ch[0] * 16, ch[0]),
                        EqualizedLinear(ch[0], 1, gain=1.0),
                    ]
                )
            ]
        )
        self.blocks.extend(
            nn.ModuleList([EqualizedConv2d(b, b, 3), EqualizedConv2d(b, a, 3)]) for a, b in zip(ch[:-1], ch[1:])
        )
        self.mbstd = MinibatchStdDev(mbstd_group)

    def _block(self, k: int, h: torch.Tensor) -> torch.Tensor:
        if k == 0:
            conv, dense, out = self.blocks[0]
            h = _lrelu(conv(self.mbstd(h)))
            return out(_lrelu(dense(h.flatten(1))))
        for conv in self.blocks[k]:
            h = _lrelu(conv(h))
        return F.avg_pool2d(h, 2)

    def forward(self, x: torch.Tensor, level: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        level = self.levels - 1 if level is None else level
        h = _lrelu(self.from_rgb[level](x))
        if level > 0:
            h = self._block(level, h)
            if alpha < 1:
                old = _lrelu(self.from_rgb[level - 1](F.avg_pool2d(x, 2)))
                h = torch.lerp(old, h, alpha)
            for k in range(level - 1, 0, -1):
                h = self._block(k, h)
        return self._block(0, h).flatten()
