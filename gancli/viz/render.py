"""One renderer per sample kind, each turning a Panel into a picture; `save_panels` lays several out side
by side under their names. A new kind (e.g. sequences → line plots) registers its own renderer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from gancli.core.registry import Registry
from gancli.viz.panel import Panel

RENDERERS: Registry[Callable[..., object]] = Registry("sample kind")  # panel → PIL image
LABEL_HEIGHT = 14


def to_uint8_images(x: torch.Tensor, low: float = -1.0) -> torch.Tensor:
    """[-1, 1] float (N, C, H, W), or [0, 1] with low=0 (the data's units), → uint8 (N, H, W, C), the layout
    image tools and FID code expect."""
    scale = 255 / (1 - low)
    return ((x.clamp(low, 1) - low) * scale).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


@RENDERERS.register("image")
def image_grid(panel: Panel, title: str = ""):
    """torchvision's grid (2 px grey padding), converted as `save_image` converts it."""
    from PIL import Image
    from torchvision.utils import make_grid

    grid = make_grid((panel.data.clamp(-1, 1) + 1) / 2, nrow=panel.nrow, padding=2, pad_value=0.5)
    arr = grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to("cpu", torch.uint8).numpy()
    return Image.fromarray(arr)


@RENDERERS.register("points")
def scatter(panel: Panel, title: str = "", size: int = 512):
    """Real points in grey, generated in red, mode centres as blue crosses (PIL: no plotting dependency)."""
    from PIL import Image, ImageDraw

    x, reference = panel.data, panel.overlay
    centres = torch.tensor(panel.extras.get("centres", []), dtype=torch.float32).view(-1, 2)
    pool = [t for t in (centres, reference) if t is not None and len(t)]
    span = torch.cat(pool).abs().max().item() if pool else x.abs().max().item()
    lim = max(span * 1.25, 1e-3)
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)

    def px(p: torch.Tensor) -> list[tuple[float, float]]:
        q = ((p / lim + 1) / 2 * (size - 1)).tolist()
        return [(a, size - 1 - b) for a, b in q]

    for a, b in px(reference if reference is not None else torch.empty(0, 2)):
        draw.point((a, b), fill=(170, 170, 170))
    for a, b in px(x.view(-1, 2)):
        draw.ellipse((a - 1.2, b - 1.2, a + 1.2, b + 1.2), fill=(220, 40, 40))
    for a, b in px(centres):
        draw.line((a - 5, b, a + 5, b), fill=(30, 60, 220), width=2)
        draw.line((a, b - 5, a, b + 5), fill=(30, 60, 220), width=2)
    draw.rectangle((0, 0, size - 1, size - 1), outline=(0, 0, 0))
    draw.text((6, 4), f"{title}  real: grey  generated: red  range ±{lim:.2f}".strip(), fill=(0, 0, 0))
    return img


@RENDERERS.register("latent")
def latent_scatter(panel: Panel, title: str = "", size: float = 5.0):
    """Codes in a 2-D latent space (the first two coordinates), coloured by class when the panel has labels,
    over prior draws in grey: the AAE paper's scatter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z = panel.data.view(len(panel.data), -1)[:, :2].numpy()
    fig, ax = plt.subplots(figsize=(size, size), dpi=90)
    if panel.overlay is not None:
        prior = panel.overlay.view(len(panel.overlay), -1)[:, :2].numpy()
        big = panel.extras.get("overlay_marker") == "x"  # a few landmarks (cluster heads), not a cloud
        ax.scatter(
            prior[:, 0],
            prior[:, 1],
            s=40 if big else 2,
            c=[(0.45, 0.45, 0.45) if big else (0.75, 0.75, 0.75)],
            marker="x" if big else "o",
            rasterized=True,
            zorder=3 if big else 1,
        )
    labels = panel.meta.get("labels")
    if labels is None:
        ax.scatter(z[:, 0], z[:, 1], s=3, c=[(0.85, 0.15, 0.15)], label="encoded")
    else:
        points = ax.scatter(z[:, 0], z[:, 1], s=3, c=labels.numpy(), cmap="tab10" if labels.max() < 10 else "tab20")
        ax.legend(
            *points.legend_elements(), fontsize=6, markerscale=0.8, loc="upper right", title="class", title_fontsize=6
        )
    ax.set_title(
        f"{title}  encoded data over {panel.extras.get('overlay_name', 'the prior (grey)')}".strip(), fontsize=8
    )
    ax.tick_params(labelsize=6)
    ax.set_aspect("equal", adjustable="datalim")
    return figure_image(fig)


@RENDERERS.register("sequence")
def line_plot(panel: Panel, title: str = "", shown: int = 8, max_channels: int = 4):
    """Generated sequences (red) over real ones (grey), one subplot per channel (the first few)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = panel.data[:shown]
    channels = min(x.shape[-1], max_channels)
    fig, axes = plt.subplots(channels, 1, figsize=(5, 1.6 * channels + 0.4), dpi=90, squeeze=False, sharex=True)
    for c in range(channels):
        ax = axes[c][0]
        if panel.overlay is not None:
            for seq in panel.overlay[:shown]:
                ax.plot(seq[:, c].numpy(), color=(0.6, 0.6, 0.6), lw=0.8)
        for seq in x:
            ax.plot(seq[:, c].numpy(), color=(0.85, 0.15, 0.15), lw=0.9)
        ax.set_ylabel(f"ch {c}", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.ticklabel_format(axis="y", useOffset=False)  # a flat trace reads as its value, not "1e-5 − 0.9999"
    axes[0][0].set_title(f"{title}  real: grey  generated: red".strip(), fontsize=8)
    axes[-1][0].set_xlabel("step", fontsize=7)
    return figure_image(fig)


def figure_image(fig):
    """A matplotlib figure as an RGB PIL image (the figure is closed)."""
    import io

    import matplotlib.pyplot as plt
    from PIL import Image

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def render_panels(panels: Mapping[str, Panel], title: str = ""):
    """One picture of all panels: a single panel as its renderer draws it; several side by side, each under
    its name, with the title above them."""
    from PIL import Image, ImageDraw

    pictures = {name: RENDERERS.get(p.kind)(p.cpu(), title=title) for name, p in panels.items()}
    if len(pictures) == 1:
        return next(iter(pictures.values()))
    gap = 6
    top = LABEL_HEIGHT * (2 if title else 1)
    width = sum(im.width for im in pictures.values()) + gap * (len(pictures) - 1)
    height = top + max(im.height for im in pictures.values())
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((2, 1), title, fill=(0, 0, 0))
    x = 0
    for name, im in pictures.items():
        draw.text((x + 2, top - LABEL_HEIGHT + 1), name, fill=(0, 0, 0))
        canvas.paste(im.convert("RGB"), (x, top))
        x += im.width + gap
    return canvas


def save_panels(panels: Mapping[str, Panel], path: str | Path, title: str = "") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    render_panels(panels, title).save(path)
    return path
