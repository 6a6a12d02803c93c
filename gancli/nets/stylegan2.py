"""StyleGAN2 networks (Karras et al. 2020) in plain PyTorch: no custom CUDA ops, so they run under
torch.compile, autocast and channels_last on any device.

- Mapping: z (second-moment normalised; with a class, its embedding joins it) → 8 equalised FC layers with
  lr multiplier 0.01 → w; a running average of w (`w_avg`) for truncation.
- Synthesis: a learned 4×4 constant, then per resolution two modulated 3×3 convolutions (weights scaled by
  the style, then demodulated to unit norm per output channel), per-layer noise with a learned strength,
  and a skip architecture (each resolution's 1×1 toRGB added to the upsampled image so far).
- Discriminator: residual blocks (two 3×3 convs and a 1×1 skip, summed and scaled by 1/√2), minibatch
  stddev, a 4×4 epilogue, and a projection head for classes.

Resampling is bilinear up / 2×2 average down, where the reference code uses a [1, 3, 3, 1] FIR filter with
transposed and strided convolutions.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from gancli.nets.progressive import EqualizedConv2d, EqualizedLinear, MinibatchStdDev, level_count, widths

GAIN = math.sqrt(2)  # lrelu's gain, applied after every activation as the reference's bias_act does


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * GAIN


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class MappingNetwork(nn.Module):
    def __init__(
        self,
        z_dim: int,
        w_dim: int,
        num_ws: int,
        layers: int = 8,
        lr_mul: float = 0.01,
        num_classes: int = 0,
        w_avg_beta: float = 0.995,
    ):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.num_classes, self.beta = z_dim, w_dim, num_ws, num_classes, w_avg_beta
        self.embed = EqualizedLinear(num_classes, w_dim, gain=1.0) if num_classes else None
        sizes = [z_dim + (w_dim if num_classes else 0)] + [w_dim] * layers
        self.fc = nn.ModuleList(EqualizedLinear(a, b, gain=1.0, lr_mul=lr_mul) for a, b in zip(sizes[:-1], sizes[1:]))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: torch.Tensor,
        labels: torch.Tensor | None = None,
        psi: float = 1.0,
        cutoff: int | None = None,
        track: bool = False,
    ) -> torch.Tensor:
        """(B, num_ws, w_dim). track: update the running average of w (training); psi < 1: truncate the
        first `cutoff` layers' w toward it (all layers when cutoff is None)."""
        x = normalize_2nd_moment(z.float())
        if self.embed is not None:
            y = normalize_2nd_moment(self.embed(F.one_hot(labels.long(), self.num_classes).float()))
            x = torch.cat([x, y], 1)
        for layer in self.fc:
            x = lrelu(layer(x))
        if track:
            with torch.no_grad():
                self.w_avg.copy_(torch.lerp(x.detach().float().mean(0), self.w_avg, self.beta))
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if psi != 1:
            ws = truncate(ws, self.w_avg, psi, cutoff)
        return ws


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
    """w ← w̄ + ψ(w − w̄) on the first `cutoff` layers (all when None)."""
    out = ws.clone()
    n = ws.shape[1] if cutoff is None else min(cutoff, ws.shape[1])
    out[:, :n] = torch.lerp(w_avg.to(ws.dtype), ws[:, :n], psi)
    return out


def mix_styles(w1: torch.Tensor, w2: torch.Tensor, crossover: torch.Tensor) -> torch.Tensor:
    """Per sample, w1's layers before its crossover index and w2's from it on ((B,) indices; num_ws: no mix)."""
    idx = torch.arange(w1.shape[1], device=w1.device).view(1, -1, 1)
    return torch.where(idx < crossover.view(-1, 1, 1), w1, w2)


def draw_mixed_ws(
    mapping: MappingNetwork,
    n: int,
    z_dim: int,
    probability: float,
    device,
    labels: torch.Tensor | None = None,
    track: bool = False,
    active: int | None = None,
) -> torch.Tensor:
    """Training latents with style mixing: w of one z, or (with `probability`) w1 up to a random crossover
    among the first `active` layers (those a growing G uses now; default all) and w2 after it, drawn on the
    device (no host round trip)."""
    ws = mapping(torch.randn(n, z_dim, device=device), labels, track=track)
    active = mapping.num_ws if active is None else active
    if probability > 0 and active > 1:
        w2 = mapping(torch.randn(n, z_dim, device=device), labels, track=track)
        cross = torch.randint(1, active, (n,), device=device)
        mixed = torch.rand(n, device=device) < probability
        ws = mix_styles(ws, w2, torch.where(mixed, cross, torch.full_like(cross, mapping.num_ws)))
    return ws


def modulated_weight(weight: torch.Tensor, styles: torch.Tensor, demodulate: bool) -> torch.Tensor:
    """(B, out, in, k, k): the weight scaled per input channel by each sample's style, then (demodulate)
    divided by its norm per output channel."""
    w = weight.unsqueeze(0) * styles.view(styles.shape[0], 1, -1, 1, 1)
    if demodulate:
        w = w * (w.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8).rsqrt()
    return w


def modulated_conv_per_sample(
    x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool, pad: int
) -> torch.Tensor:
    """The modulated convolution without batch-sized groups (the reference's fused_modconv=False): the
    input scaled by the styles, one convolution with the shared weight, the output scaled by each sample's
    demodulation. The same maps as the grouped form up to rounding, for any batch size."""
    out = F.conv2d(x * styles[:, :, None, None].to(x.dtype), weight.to(x.dtype), padding=pad)
    if not demodulate:
        return out
    norm = (weight.unsqueeze(0) * styles[:, None, :, None, None]).square().sum(dim=(2, 3, 4))
    return out * (norm + 1e-8).rsqrt()[:, :, None, None].to(x.dtype)


class ModulatedConv2d(nn.Module):
    def __init__(self, n_in: int, n_out: int, kernel: int, w_dim: int, demodulate: bool = True, up: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in, kernel, kernel))
        self.affine = EqualizedLinear(w_dim, n_in, gain=1.0, bias_init=1.0)  # styles start at 1
        self.scale, self.pad, self.demodulate, self.up = (
            1 / math.sqrt(n_in * kernel * kernel),
            kernel // 2,
            demodulate,
            up,
        )

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        if torch.jit.is_tracing():  # an exported file: a batch-sized group count would fix its batch size
            return modulated_conv_per_sample(x, self.weight * self.scale, self.affine(w), self.demodulate, self.pad)
        b, c, h, wd = x.shape
        weight = modulated_weight(self.weight * self.scale, self.affine(w), self.demodulate)
        out = F.conv2d(
            x.reshape(1, b * c, h, wd), weight.reshape(-1, c, *weight.shape[3:]).to(x.dtype), padding=self.pad, groups=b
        )
        return out.view(b, -1, h, wd)


def layer_noise(
    x: torch.Tensor, mode: str, generator: torch.Generator | None, const: torch.Tensor
) -> torch.Tensor | None:
    """The noise a synthesis layer adds to its maps x, (B, 1, H, W) in x's dtype: fresh ("random"; from
    `generator` when given, so sampling is reproducible), the layer's own fixed map ("const"), or None ("none")."""
    if mode == "none":
        return None
    if mode == "const":
        return const.to(x.dtype).expand(x.shape[0], 1, *x.shape[2:])
    shape = (x.shape[0], 1, *x.shape[2:])
    noise = torch.randn(shape, device=x.device) if generator is None else torch.randn(shape, generator=generator)
    return noise.to(x.device, x.dtype)


class SynthesisLayer(nn.Module):
    """Modulated 3×3 conv, + noise · learned strength, + bias, lrelu. A constant noise map is kept for
    noise_mode="const" (sampling), as the reference keeps one."""

    def __init__(self, n_in: int, n_out: int, w_dim: int, resolution: int, up: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(n_in, n_out, 3, w_dim, up=up)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(n_out))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))

    def forward(self, x, w, noise_mode: str = "random", generator: torch.Generator | None = None):
        x = self.conv(x, w)
        noise = layer_noise(x, noise_mode, generator, self.noise_const)
        if noise is not None:
            x = x + noise * self.noise_strength
        return lrelu(x + self.bias.view(1, -1, 1, 1).to(x.dtype))


class ToRGB(nn.Module):
    def __init__(self, n_in: int, channels: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv2d(n_in, channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x, w):
        return self.conv(x, w) + self.bias.view(1, -1, 1, 1).to(x.dtype)


class SynthesisNetwork(nn.Module):
    """ws (B, 2·levels, w_dim) → image. Level k (4·2^k px) reads ws[2k − 1] (its up-conv, k > 0), ws[2k]
    and ws[2k + 1] (its toRGB), the reference's indexing."""

    def __init__(self, w_dim: int, channels: int, resolution: int, width: int, max_width: int):
        super().__init__()
        self.levels = level_count(resolution)
        self.num_ws = 2 * self.levels
        ch = widths(self.levels, width, max_width)
        self.const = nn.Parameter(torch.randn(ch[0], 4, 4))
        self.convs = nn.ModuleList()
        for k in range(self.levels):
            res = 4 * 2**k
            layers = (
                [SynthesisLayer(ch[k], ch[k], w_dim, res)]
                if k == 0
                else [SynthesisLayer(ch[k - 1], ch[k], w_dim, res, up=True), SynthesisLayer(ch[k], ch[k], w_dim, res)]
            )
            self.convs.append(nn.ModuleList(layers))
        self.to_rgb = nn.ModuleList(ToRGB(c, channels, w_dim) for c in ch)

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", generator: torch.Generator | None = None):
        x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1).to(ws.dtype)
        img = None
        for k in range(self.levels):
            first = 0 if k == 0 else 2 * k - 1
            for i, layer in enumerate(self.convs[k]):
                x = layer(x, ws[:, first + i], noise_mode, generator)
            rgb = self.to_rgb[k](x, ws[:, 2 * k + 1])
            img = rgb if img is None else F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False) + rgb
        return img


class StyleGenerator(nn.Module):
    def __init__(
        self,
        z_dim: int,
        channels: int,
        resolution: int,
        w_dim: int = 512,
        width: int = 32,
        max_width: int = 512,
        mapping_layers: int = 8,
        lr_mul: float = 0.01,
        num_classes: int = 0,
    ):
        super().__init__()
        self.synthesis = SynthesisNetwork(w_dim, channels, resolution, width, max_width)
        self.mapping = MappingNetwork(z_dim, w_dim, self.synthesis.num_ws, mapping_layers, lr_mul, num_classes)
        self.z_dim, self.num_ws = z_dim, self.synthesis.num_ws

    def forward(self, z, labels=None, psi: float = 1.0, cutoff: int | None = None, noise_mode: str = "random"):
        return self.synthesis(self.mapping(z, labels, psi, cutoff), noise_mode)


class ResidualDiscriminator(nn.Module):
    def __init__(
        self,
        channels: int,
        resolution: int,
        width: int = 32,
        max_width: int = 512,
        mbstd_group: int = 4,
        num_classes: int = 0,
    ):
        super().__init__()
        levels = level_count(resolution)
        ch = widths(levels, width, max_width)
        # weight gain 1 where lrelu() adds the activation gain √2 (the reference's bias_act)
        self.from_rgb = EqualizedConv2d(channels, ch[-1], 1, gain=1.0)
        self.blocks = nn.ModuleList(
            nn.ModuleList(
                [
                    EqualizedConv2d(ch[k], ch[k], 3, gain=1.0),
                    EqualizedConv2d(ch[k], ch[k - 1], 3, gain=1.0),
                    EqualizedConv2d(ch[k], ch[k - 1], 1, gain=1.0, bias=False),
                ]
            )
            for k in range(levels - 1, 0, -1)
        )
        self.mbstd = MinibatchStdDev(mbstd_group)
        self.conv = EqualizedConv2d(ch[0] + 1, ch[0], 3, gain=1.0)
        self.fc = EqualizedLinear(ch[0] * 16, ch[0], gain=1.0)
        self.num_classes = num_classes
        self.out = EqualizedLinear(ch[0], num_classes if num_classes else 1, gain=1.0)
        self.embed = EqualizedLinear(num_classes, num_classes, gain=1.0) if num_classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = lrelu(self.from_rgb(x))
        for conv0, conv1, skip in self.blocks:
            s = F.avg_pool2d(skip(h), 2)
            h = lrelu(F.avg_pool2d(conv1(lrelu(conv0(h))), 2))  # down, then the activation
            h = (h + s) / GAIN
        h = lrelu(self.conv(self.mbstd(h)))
        out = self.out(lrelu(self.fc(h.flatten(1))))
        if self.embed is None:
            return out.flatten()
        cmap = self.embed(F.one_hot(labels.long(), self.num_classes).float())  # projection (the reference's cmap)
        return (out * cmap).sum(1) / math.sqrt(self.num_classes)
