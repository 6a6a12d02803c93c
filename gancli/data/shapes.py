"""`shapes`: the embedded dataset. Coloured shapes drawn procedurally, deterministic by seed.

Each image: one shape of a class (circle, square, triangle, cross, star) with a random saturated
colour, size, position and rotation on a black background, anti-aliased by 2×2 supersampling.
Labels are the class index, so conditional and InfoGAN families can use them.
"""

from __future__ import annotations

import math

import torch

from gancli.core.errors import GanError
from gancli.data.base import DATASETS, Field, in_memory_source, labelled


def _inside(kind: str, u: torch.Tensor, v: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Is the point (u, v), in the shape's own rotated frame, inside a shape of radius r?"""
    if kind == "circle":
        return u * u + v * v <= r * r
    if kind == "square":
        s = r * 0.8
        return (u.abs() <= s) & (v.abs() <= s)
    if kind == "triangle":  # equilateral, circumradius 1.15 r (same visual weight as the others), apex up
        r = 1.15 * r
        inside = v >= -0.5 * r
        for ang in (math.radians(30.0), math.radians(150.0)):
            nx, ny = math.cos(ang), math.sin(ang)
            inside &= u * nx + v * ny <= 0.5 * r
        return inside
    if kind == "cross":
        w = r * 0.3
        return ((u.abs() <= w) & (v.abs() <= r)) | ((v.abs() <= w) & (u.abs() <= r))
    if kind == "star":  # five points: radius alternates between r and 0.45 r, linear in angle between
        rho = torch.sqrt(u * u + v * v)
        phi = torch.atan2(u, v)  # 0 at the top
        sector = 2 * math.pi / 5
        t = torch.remainder(phi, sector) / sector  # 0..1 within one point
        tri = (2 * t - 1).abs()  # 1 at tips, 0 between
        edge = r * (0.45 + 0.55 * tri)
        return rho <= edge
    raise GanError(f"unknown shape class '{kind}'; available: {', '.join(SHAPES)}.")


SHAPES = ("circle", "square", "triangle", "cross", "star")


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], dim=-1)
    return v[:, None] - v[:, None] * s[:, None] * torch.clamp(torch.minimum(k, 4 - k), 0, 1)


def render_shapes(n: int, resolution: int, seed: int, classes=SHAPES, rotation: float = 15.0, chunk: int = 512):
    """Returns (uint8 images (n, 3, R, R), int64 labels (n,)). Same arguments → same tensors.

    rotation: shapes turn by a uniform angle in [−rotation, rotation] degrees.
    """
    if not 8 <= resolution <= 128:
        raise GanError(f"dataset.resolution={resolution} is out of range for shapes (8..128).")
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(len(classes), (n,), generator=g)
    # Large shapes, moderate jitter: every image has enough pixels to show its class at 32 px.
    radius = 0.55 + 0.3 * torch.rand(n, generator=g)  # of the half-width
    max_off = 0.6 * (1.0 - radius)
    cx = (torch.rand(n, generator=g) * 2 - 1) * max_off
    cy = (torch.rand(n, generator=g) * 2 - 1) * max_off
    theta = (torch.rand(n, generator=g) * 2 - 1) * math.radians(rotation)
    colour = _hsv_to_rgb(
        torch.rand(n, generator=g), 0.6 + 0.4 * torch.rand(n, generator=g), 0.75 + 0.25 * torch.rand(n, generator=g)
    )

    ss = 2  # supersampling factor per axis (2×2 samples per pixel)
    m = resolution * ss
    coords = (torch.arange(m, dtype=torch.float32) + 0.5) / m * 2 - 1
    py, px = torch.meshgrid(-coords, coords, indexing="ij")  # y up
    out = torch.empty(n, 3, resolution, resolution, dtype=torch.uint8)
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        dx = px[None] - cx[sl, None, None]
        dy = py[None] - cy[sl, None, None]
        c, s = torch.cos(theta[sl])[:, None, None], torch.sin(theta[sl])[:, None, None]
        u, v = c * dx + s * dy, -s * dx + c * dy
        r = radius[sl, None, None]
        mask = torch.zeros(u.shape, dtype=torch.bool)
        for k, kind in enumerate(classes):
            sel = labels[sl] == k
            if sel.any():
                mask[sel] = _inside(kind, u[sel], v[sel], r[sel])
        cover = torch.nn.functional.avg_pool2d(mask.float()[:, None], ss)  # (b, 1, R, R) in [0, 1]
        img = cover * colour[sl, :, None, None]
        out[sl] = (img * 255).round().clamp(0, 255).to(torch.uint8)
    return out, labels


@DATASETS.register("shapes")
def shapes(resolution: int = 32, n: int = 20000, seed: int = 1234, classes=SHAPES, rotation: float = 15.0, root=None):
    classes = tuple(classes)
    unknown = [c for c in classes if c not in SHAPES]
    if unknown:
        raise GanError(f"dataset.classes: unknown shape(s) {unknown}; available: {', '.join(SHAPES)}.")
    x, y = render_shapes(n, resolution, seed, classes, rotation)
    spec = labelled(Field("image", (3, resolution, resolution)), len(classes), classes)
    return in_memory_source(
        spec, {"x": x, "y": y}, f"shapes: {n} procedural {resolution}px images, {len(classes)} classes"
    )
