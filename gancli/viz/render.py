"""One renderer per sample kind; a new kind (e.g. sequences → line plots) registers its own."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from gancli.data.base import DataSpec
from gancli.registry import Registry

RENDERERS: Registry[Callable[..., None]] = Registry("sample kind")


def save_samples(samples: torch.Tensor, spec: DataSpec, path: str | Path, nrow: int = 8,
                 reference: torch.Tensor | None = None, title: str = "") -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    RENDERERS.get(spec.kind)(samples.detach().float().cpu(), spec, path, nrow=nrow, reference=reference, title=title)


def to_uint8_images(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float (N, C, H, W) → uint8 (N, H, W, C), the layout image tools and FID code expect."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


@RENDERERS.register("image")
def image_grid(x: torch.Tensor, spec: DataSpec, path: Path, nrow: int = 8, **_) -> None:
    from torchvision.utils import save_image

    save_image((x.clamp(-1, 1) + 1) / 2, path, nrow=nrow, padding=2, pad_value=0.5)


@RENDERERS.register("points")
def scatter(x: torch.Tensor, spec: DataSpec, path: Path, reference: torch.Tensor | None = None, title: str = "",
            size: int = 512, **_) -> None:
    """Real points in grey, generated in red, mode centres as blue crosses (PIL: no plotting dependency)."""
    from PIL import Image, ImageDraw

    centres = torch.tensor(spec.extras.get("centres", []), dtype=torch.float32).view(-1, 2)
    pool = [t for t in (centres, reference) if t is not None and len(t)]
    span = torch.cat(pool).abs().max().item() if pool else x.abs().max().item()
    lim = max(span * 1.25, 1e-3)
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)

    def px(p: torch.Tensor) -> list[tuple[float, float]]:
        q = ((p / lim + 1) / 2 * (size - 1)).tolist()
        return [(a, size - 1 - b) for a, b in q]

    for (a, b) in px(reference if reference is not None else torch.empty(0, 2)):
        draw.point((a, b), fill=(170, 170, 170))
    for (a, b) in px(x.view(-1, 2)):
        draw.ellipse((a - 1.2, b - 1.2, a + 1.2, b + 1.2), fill=(220, 40, 40))
    for (a, b) in px(centres):
        draw.line((a - 5, b, a + 5, b), fill=(30, 60, 220), width=2)
        draw.line((a, b - 5, a, b + 5), fill=(30, 60, 220), width=2)
    draw.rectangle((0, 0, size - 1, size - 1), outline=(0, 0, 0))
    draw.text((6, 4), f"{title}  real: grey  generated: red  range ±{lim:.2f}".strip(), fill=(0, 0, 0))
    img.save(path)
