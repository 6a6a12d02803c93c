"""What D sees: differentiable augmentation (DiffAugment, Zhao et al. 2020) and instance noise.

Both are applied to real *and* generated samples, in the D step and in the G step, so D cannot tell
them apart by the augmentation and G gets gradients through it. Random draws use torch's global RNG on
the samples' device, which checkpoints capture: a resumed run augments exactly as an unbroken one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from gancli.core.errors import GanError


def brightness(x: torch.Tensor) -> torch.Tensor:
    """Adds one offset in [−0.5, 0.5) per sample."""
    return x + (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)


def saturation(x: torch.Tensor) -> torch.Tensor:
    """Scales each pixel's distance from its channel mean by a factor in [0, 2)."""
    mean = x.mean(1, keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean


def contrast(x: torch.Tensor) -> torch.Tensor:
    """Scales the distance from the image mean by a factor in [0.5, 1.5)."""
    mean = x.mean((1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shifts each image by up to ratio × its size in each axis (whole pixels), filling with zeros."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (b, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (b, 1, 1), device=x.device)
    iy = torch.arange(h, device=x.device)[None, :, None] + dy + sh  # rows in the padded image
    ix = torch.arange(w, device=x.device)[None, None, :] + dx + sw
    padded = F.pad(x, [sw, sw, sh, sh])
    bi = torch.arange(b, device=x.device)[:, None, None]
    return padded[bi, :, iy, ix].permute(0, 3, 1, 2)  # (b, h, w, c) → (b, c, h, w)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zeroes one square of ratio × the image size per sample, centred anywhere in the image."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device) - ch // 2
    cx = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device) - cw // 2
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    hole = (ys >= cy) & (ys < cy + ch) & (xs >= cx) & (xs < cx + cw)
    return x * (~hole).unsqueeze(1).to(x.dtype)


POLICIES: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], ...]] = {
    "color": (brightness, saturation, contrast),
    "translation": (translation,),
    "cutout": (cutout,),
}


class DiffAugment:
    """Applies the chosen policies in the paper's order (color, translation, cutout)."""

    def __init__(self, policies: Sequence[str], kind: str):
        unknown = [p for p in policies if p not in POLICIES]
        if unknown:
            raise GanError(
                f"tricks.diffaugment: unknown polic{'y' if len(unknown) == 1 else 'ies'} {unknown}; "
                f"choose from: {', '.join(POLICIES)}."
            )
        if policies and kind != "image":
            raise GanError(f"tricks.diffaugment augments images; this dataset holds {kind}. Use tricks.diffaugment=[].")
        self.ops = [op for name in POLICIES if name in policies for op in POLICIES[name]]

    def __bool__(self) -> bool:
        return bool(self.ops)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            x = op(x)
        return x


def instance_noise(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """x + N(0, σ²) (Sønderby et al. 2016; Arjovsky & Bottou 2017): overlaps the real and fake supports."""
    return x + sigma * torch.randn_like(x) if sigma > 0 else x
