"""The sliced Wasserstein distance of ProGAN's paper (Karras et al. 2018, §5): real and generated images
compared patch by patch at every level of a Laplacian pyramid, so it tells which scale (coarse layout or
fine texture) differs, with no pretrained network.

As the reference code measures it: pixel values 0–255; a Laplacian pyramid from the full resolution down to
16 px (5×5 binomial blur, every other pixel; up by zero insertion and 4× the blur); per level 128 7×7
patches per image at random places, each set normalised per colour channel by its own mean and std; then
the sliced Wasserstein distance: 128 random unit directions, both sets projected and sorted, the mean
absolute difference, averaged over 4 repeats. Reported ×10³ as the paper's tables do; `swd` is the mean
over levels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gancli.core.errors import GanError
from gancli.metrics.base import METRICS, Metric

PATCH, PER_IMAGE, DIRECTIONS, REPEATS, MIN_RES = 7, 128, 128, 4, 16
_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16


def _blur(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    k = (_BINOMIAL[:, None] * _BINOMIAL[None, :] * gain).to(x).expand(x.shape[1], 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k, groups=x.shape[1])


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    return _blur(x)[:, :, ::2, ::2]


def pyr_up(x: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    up = torch.zeros(n, c, 2 * h, 2 * w, dtype=x.dtype)
    up[:, :, ::2, ::2] = x
    return _blur(up, 4.0)


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Band-pass images, finest first, then the coarsest Gaussian level."""
    out = [x]
    for _ in range(levels - 1):
        out.append(pyr_down(out[-1]))
        out[-2] = out[-2] - pyr_up(out[-1])
    return out


def patches(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(N·PER_IMAGE, C·7·7) descriptors at random places."""
    n, c, h, w = x.shape
    ys = torch.randint(0, h - PATCH + 1, (n, PER_IMAGE), generator=generator)
    xs = torch.randint(0, w - PATCH + 1, (n, PER_IMAGE), generator=generator)
    grid = x.unfold(2, PATCH, 1).unfold(3, PATCH, 1)  # (n, c, h', w', 7, 7)
    idx = torch.arange(n)[:, None]
    return grid[idx, :, ys, xs].reshape(n * PER_IMAGE, c, PATCH, PATCH)


def normalise(desc: torch.Tensor) -> torch.Tensor:
    """Per colour channel, zero mean and unit std over every patch and position; flattened."""
    desc = desc - desc.mean(dim=(0, 2, 3), keepdim=True)
    desc = desc / desc.std(dim=(0, 2, 3), keepdim=True, unbiased=False).clamp_min(1e-8)
    return desc.reshape(len(desc), -1)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, generator: torch.Generator) -> float:
    dists = []
    for _ in range(REPEATS):
        d = torch.randn(a.shape[1], DIRECTIONS, generator=generator)
        d = d / d.norm(dim=0, keepdim=True)
        pa, pb = (a @ d).sort(dim=0).values, (b @ d).sort(dim=0).values
        dists.append((pa - pb).abs().mean().item())
    return sum(dists) / len(dists)


def swd(real: torch.Tensor, fake: torch.Tensor, seed: int = 0) -> list[float]:
    """Per level (finest first) ×10³, for uint8 images (N, C, H, W) of equal count (float ones in [−1, 1]
    are mapped to 0–255 first)."""
    real, fake = (t.float() if t.dtype == torch.uint8 else (t.float() + 1) * 127.5 for t in (real, fake))
    res, levels = real.shape[-1], 0
    while res >= MIN_RES:
        levels, res = levels + 1, res // 2
    g = torch.Generator().manual_seed(seed)
    return [
        1e3 * sliced_wasserstein(normalise(patches(lr, g)), normalise(patches(lf, g)), g)
        for lr, lf in zip(laplacian_pyramid(real, max(levels, 1)), laplacian_pyramid(fake, max(levels, 1)))
    ]


@METRICS.register("swd")
class SlicedWasserstein(Metric):
    needs_features = False
    values = ("swd",)
    protocol = "ProGAN's sliced Wasserstein distance ×10³ on 7×7 Laplacian-pyramid patches, mean over levels"

    def check(self, ctx):
        super().check(ctx)
        if ctx.field.shape[-1] < MIN_RES:
            raise GanError(
                f"swd compares Laplacian-pyramid patches from {MIN_RES} px up; these images are "
                f"{ctx.field.shape[-1]} px."
            )

    def compute(self, ctx):
        real = ctx.real.train.samples
        n = min(len(real), len(ctx.samples))
        levels = swd(real[:n], ctx.samples[:n])
        return {"swd": sum(levels) / len(levels)}
