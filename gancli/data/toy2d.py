"""2-D mixtures of Gaussians for mode-collapse studies (VEEGAN / PacGAN protocol)."""

from __future__ import annotations

import math

import torch

from gancli.data.base import DATASETS, IGNORED, Field, in_memory_source, labelled, with_rules


def ring_centres(k: int = 8, radius: float = 1.0) -> torch.Tensor:
    ang = torch.arange(k, dtype=torch.float64) * (2 * math.pi / k)
    return torch.stack([radius * torch.cos(ang), radius * torch.sin(ang)], 1).float()


def grid_centres(values=(-4.0, -2.0, 0.0, 2.0, 4.0)) -> torch.Tensor:
    v = torch.tensor(values)
    gx, gy = torch.meshgrid(v, v, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)


def _mixture(centres: torch.Tensor, std: float, n: int, seed: int, name: str):
    g = torch.Generator().manual_seed(seed)
    mode = torch.randint(len(centres), (n,), generator=g)
    x = centres[mode] + std * torch.randn(n, 2, generator=g)
    # the label is the mixture component: conditional families can be asked for one mode
    spec = labelled(Field("points", (2,), extras={"centres": centres.tolist(), "std": std}), len(centres))
    return in_memory_source(spec, {"x": x, "y": mode}, f"{name}: {n} points, {len(centres)} Gaussians, σ={std}")


@DATASETS.register("ring8")
@with_rules(resolution=IGNORED)
def ring8(n: int = 100000, seed: int = 1234, std: float = 0.01, resolution=None, root=None):
    return _mixture(ring_centres(), std, n, seed, "ring8")


@DATASETS.register("grid25")
@with_rules(resolution=IGNORED)
def grid25(n: int = 100000, seed: int = 1234, std: float = 0.05, resolution=None, root=None):
    return _mixture(grid_centres(), std, n, seed, "grid25")
