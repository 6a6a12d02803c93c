"""Image-to-image networks (Isola et al. 2017; Zhu et al. 2017), as their authors' code builds them:

- `UNet`: an encoder of 4×4 stride-2 convs down to 1×1 and a decoder of transposed convs back, each decoder
  stage joined to its mirror encoder stage (skip connections); BatchNorm, LeakyReLU(0.2) down, ReLU up,
  tanh out; dropout 0.5 in the three innermost-but-one decoder stages, kept on at test time: the only
  noise (pix2pix drops z, which G learns to ignore). Its depth follows the resolution (unet_256: 8 downs).
- `PatchGAN`: D as a grid of real/fake logits, each seeing one patch; `n_layers` 3 gives 70×70 patches.
  `n_layers` 0 is the 1×1 PixelGAN.
- `ResnetGenerator`: c7s1-64, two stride-2 downs, `blocks` residual blocks (6 at ≤ 128 px, 9 above),
  two stride-2 ups, c7s1 out; InstanceNorm, reflection padding (CycleGAN).

All weights start as N(0, 0.02) (norm scales N(1, 0.02)), as the reference `init_weights('normal')`.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from gancli.core.errors import GanError


def _norm(name: str, channels: int) -> nn.Module:
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if name == "none":
        return nn.Identity()
    raise GanError(f"norm '{name}' is not one of: batch, instance, none.")


def init_normal(module: nn.Module, gain: float = 0.02) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)


def unet_depth(resolution: int) -> int:
    """Stride-2 stages down to 1×1: log2 of the resolution (256 → 8: unet_256; 128 → 7; 32 → 5)."""
    depth = int(round(math.log2(resolution)))
    if 2**depth != resolution or depth < 5:
        raise GanError(
            f"the U-Net needs a power-of-two resolution of at least 32 px (32, 64, 128, 256); got "
            f"{resolution}. Set dataset.resolution."
        )
    return depth


class _AlwaysDropout(nn.Module):
    """Dropout that stays on in eval mode too: pix2pix's only source of randomness at test time."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, training=True)


def has_test_dropout(net: nn.Module) -> bool:
    return any(isinstance(m, _AlwaysDropout) for m in net.modules())


def without_test_dropout(net: nn.Module) -> nn.Module:
    """A copy of `net` whose always-on dropout is off: deterministic outputs (the authors' test.py --eval)."""
    import copy

    net = copy.deepcopy(net)
    for module in net.modules():
        for name, child in module.named_children():
            if isinstance(child, _AlwaysDropout):
                setattr(module, name, nn.Identity())
    return net


class _UNetBlock(nn.Module):
    def __init__(
        self,
        outer: int,
        inner: int,
        in_channels: int | None = None,
        sub: nn.Module | None = None,
        outermost=False,
        innermost=False,
        norm="batch",
        dropout=0.0,
        out_channels: int | None = None,
    ):
        super().__init__()
        in_channels = in_channels or outer
        bias = norm == "instance" or norm == "none"
        down = [nn.Conv2d(in_channels, inner, 4, 2, 1, bias=bias)]
        if outermost:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner * 2, out_channels or outer, 4, 2, 1), nn.Tanh()]
            layers = [*down, sub, *up]
        elif innermost:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=bias), _norm(norm, outer)]
            layers = [nn.LeakyReLU(0.2, True), *down, *up]
        else:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=bias), _norm(norm, outer)]
            layers = [nn.LeakyReLU(0.2, True), *down, _norm(norm, inner), sub, *up]
            if dropout:
                layers.append(_AlwaysDropout(dropout))
        self.model = nn.Sequential(*layers)
        self.outermost = outermost

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UNet(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        resolution: int,
        width: int = 64,
        norm: str = "batch",
        dropout: float = 0.5,
    ):
        super().__init__()
        depth = unet_depth(resolution)
        w = width
        block = _UNetBlock(w * 8, w * 8, innermost=True, norm=norm)
        for _ in range(depth - 5):  # the ngf·8 stages, with dropout
            block = _UNetBlock(w * 8, w * 8, sub=block, norm=norm, dropout=dropout)
        for outer in (w * 4, w * 2, w):
            block = _UNetBlock(outer, outer * 2, sub=block, norm=norm)
        self.model = _UNetBlock(
            out_channels, w, in_channels=in_channels, sub=block, outermost=True, norm=norm, out_channels=out_channels
        )
        init_normal(self)

    def forward(self, x):
        return self.model(x)


class PatchGAN(nn.Module):
    """D(x) → (B, 1, H', W') logits; n_layers = 0: the 1×1 PixelGAN."""

    def __init__(self, in_channels: int, width: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        bias = norm != "batch"
        if n_layers == 0:
            layers = [
                nn.Conv2d(in_channels, width, 1),
                nn.LeakyReLU(0.2, True),
                nn.Conv2d(width, width * 2, 1, bias=bias),
                _norm(norm, width * 2),
                nn.LeakyReLU(0.2, True),
                nn.Conv2d(width * 2, 1, 1),
            ]
        else:
            layers = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
            mult = 1
            for n in range(1, n_layers):
                prev, mult = mult, min(2**n, 8)
                layers += [
                    nn.Conv2d(width * prev, width * mult, 4, 2, 1, bias=bias),
                    _norm(norm, width * mult),
                    nn.LeakyReLU(0.2, True),
                ]
            prev, mult = mult, min(2**n_layers, 8)
            layers += [
                nn.Conv2d(width * prev, width * mult, 4, 1, 1, bias=bias),
                _norm(norm, width * mult),
                nn.LeakyReLU(0.2, True),
                nn.Conv2d(width * mult, 1, 4, 1, 1),
            ]
        self.model = nn.Sequential(*layers)
        init_normal(self)

    def forward(self, x):
        return self.model(x)


def patch_output_size(resolution: int, n_layers: int) -> int:
    """The side of PatchGAN's logit grid: n_layers 4×4 stride-2 convs (padding 1) halve it, then two 4×4
    stride-1 convs (padding 1) take one each."""
    if n_layers == 0:
        return resolution
    size = resolution
    for _ in range(n_layers):
        size = (size + 2 - 4) // 2 + 1
    for _ in range(2):
        size = size + 2 - 4 + 1
    return size


def receptive_field(n_layers: int) -> int:
    """PatchGAN's patch: 70 for n_layers 3 (the paper's 70×70), 1 for the PixelGAN."""
    if n_layers == 0:
        return 1
    rf = 1
    for stride in [1, 1] + [2] * n_layers:  # walk back from the output: two stride-1 convs, then the downs
        rf = (rf - 1) * stride + 4
    return rf


class _ResBlock(nn.Module):
    def __init__(self, channels: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=norm != "batch"),
            _norm(norm, channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=norm != "batch"),
            _norm(norm, channels),
        )

    def forward(self, x):
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, width: int = 64, blocks: int = 9, norm: str = "instance"):
        super().__init__()
        bias = norm != "batch"
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7, bias=bias), _norm(norm, width), nn.ReLU(True)]
        for mult in (1, 2):
            layers += [
                nn.Conv2d(width * mult, width * mult * 2, 3, 2, 1, bias=bias),
                _norm(norm, width * mult * 2),
                nn.ReLU(True),
            ]
        layers += [_ResBlock(width * 4, norm) for _ in range(blocks)]
        for mult in (4, 2):
            layers += [
                nn.ConvTranspose2d(width * mult, width * mult // 2, 3, 2, 1, output_padding=1, bias=bias),
                _norm(norm, width * mult // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        init_normal(self)

    def forward(self, x):
        return self.model(x)


class ImagePool:
    """The last `size` fakes a D has seen (Shrivastava et al.; CycleGAN): once full, each new fake is returned
    as is with probability ½, or swapped for a stored one, which it replaces. Draws from a generator of its
    own, so the pool's behaviour is part of its resumable state."""

    def __init__(self, size: int = 50, seed: int = 0):
        self.size = int(size)
        self.images: list[torch.Tensor] = []
        self.gen = torch.Generator().manual_seed(seed)

    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return fakes
        out = []
        for img in fakes.detach():
            img = img.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif torch.rand((), generator=self.gen).item() > 0.5:
                i = int(torch.randint(len(self.images), (), generator=self.gen))
                out.append(self.images[i].clone())
                self.images[i] = img.clone()
            else:
                out.append(img)
        return torch.cat(out)

    def state_dict(self) -> dict:
        return {"images": torch.cat(self.images).cpu() if self.images else torch.empty(0), "gen": self.gen.get_state()}

    def load_state_dict(self, state: dict, device) -> None:
        self.images = [t.unsqueeze(0).to(device) for t in state["images"]] if len(state["images"]) else []
        self.gen.set_state(state["gen"])
