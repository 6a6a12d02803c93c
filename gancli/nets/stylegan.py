"""StyleGAN's generator (Karras et al. 2019): the mapping network z → w, a learned 4×4 constant, then per
resolution two 3×3 convolutions, each followed by noise (one learned scale per channel), bias, lrelu and
AdaIN (instance-normalise, then scale and shift by an affine map of w); bilinear upsampling; toRGB per
level with ProGAN's fade. It grows with ProGAN's schedule (`level`, `alpha`), and its discriminator is
ProGAN's.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from gancli.nets.progressive import EqualizedConv2d, EqualizedLinear, faded_rgb, level_count, widths
from gancli.nets.stylegan2 import MappingNetwork, layer_noise


def adain(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Each channel normalised to zero mean and unit std over its pixels, then given the style's std
    (`scale`) and mean (`shift`), both (B, C)."""
    x = x - x.mean(dim=(2, 3), keepdim=True)
    x = x * torch.rsqrt(x.square().mean(dim=(2, 3), keepdim=True) + eps)
    return x * scale[:, :, None, None] + shift[:, :, None, None]


class StyledLayer(nn.Module):
    """(conv), noise × per-channel scale, bias, lrelu, AdaIN(w)."""

    def __init__(self, n_in: int, n_out: int, w_dim: int, resolution: int, conv: bool = True):
        super().__init__()
        self.conv = EqualizedConv2d(n_in, n_out, 3) if conv else None
        self.noise_scale = nn.Parameter(torch.zeros(n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))
        self.style = EqualizedLinear(w_dim, 2 * n_out, gain=1.0)
        with torch.no_grad():
            self.style.bias[:n_out] = 1.0  # scales start at 1, shifts at 0
        self.register_buffer("noise_const", torch.randn(resolution, resolution))

    def forward(self, x, w, noise_mode: str = "random", generator: torch.Generator | None = None):
        if self.conv is not None:
            x = self.conv(x)
        noise = layer_noise(x, noise_mode, generator, self.noise_const)
        if noise is not None:
            x = x + noise * self.noise_scale.view(1, -1, 1, 1).to(x.dtype)
        x = F.leaky_relu(x + self.bias.view(1, -1, 1, 1).to(x.dtype), 0.2)
        scale, shift = self.style(w).chunk(2, dim=1)
        return adain(x, scale, shift)


class StyleSynthesis(nn.Module):
    """ws (B, 2·levels, w_dim): level k's two layers read ws[2k] and ws[2k + 1]."""

    def __init__(self, w_dim: int, channels: int, resolution: int, width: int, max_width: int):
        super().__init__()
        self.levels = level_count(resolution)
        self.num_ws = 2 * self.levels
        ch = widths(self.levels, width, max_width)
        self.const = nn.Parameter(torch.ones(ch[0], 4, 4))
        self.layers = nn.ModuleList()
        for k in range(self.levels):
            res = 4 * 2**k
            first = (
                StyledLayer(ch[k], ch[k], w_dim, res, conv=False)
                if k == 0
                else StyledLayer(ch[k - 1], ch[k], w_dim, res)
            )
            self.layers.append(nn.ModuleList([first, StyledLayer(ch[k], ch[k], w_dim, res)]))
        self.to_rgb = nn.ModuleList(EqualizedConv2d(c, channels, 1, gain=1.0) for c in ch)
        self.register_buffer("progress", torch.tensor([float(self.levels - 1), 1.0]))

    def forward(
        self, ws, noise_mode: str = "random", generator=None, level: int | None = None, alpha: float | None = None
    ):
        if level is None:  # sampling: where training was (one host read)
            level, alpha = int(self.progress[0].item()), float(self.progress[1].item())
        alpha = 1.0 if alpha is None else alpha
        x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1).to(ws.dtype)
        prev = None
        for k in range(level + 1):
            if k == level and alpha < 1 and k > 0:
                prev = x
            if k > 0:
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            for i, layer in enumerate(self.layers[k]):
                x = layer(x, ws[:, 2 * k + i], noise_mode, generator)
        return faded_rgb(self.to_rgb, x, prev, level, alpha)


class StyleGANGenerator(nn.Module):
    def __init__(
        self,
        z_dim: int,
        channels: int,
        resolution: int,
        w_dim: int = 512,
        width: int = 16,
        max_width: int = 512,
        mapping_layers: int = 8,
        lr_mul: float = 0.01,
    ):
        super().__init__()
        self.synthesis = StyleSynthesis(w_dim, channels, resolution, width, max_width)
        self.mapping = MappingNetwork(z_dim, w_dim, self.synthesis.num_ws, mapping_layers, lr_mul)
        self.z_dim, self.num_ws, self.levels = z_dim, self.synthesis.num_ws, self.synthesis.levels

    @property
    def progress(self) -> torch.Tensor:
        return self.synthesis.progress

    def trained_at(self) -> tuple[int, float]:
        level, alpha = self.progress.tolist()
        return int(level), float(alpha)

    def forward(self, z, level: int | None = None, alpha: float = 1.0, ws: torch.Tensor | None = None):
        ws = self.mapping(z) if ws is None else ws
        return self.synthesis(ws, "random", None, level, alpha)
