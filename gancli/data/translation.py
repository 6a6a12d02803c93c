"""Datasets for image-to-image translation: fields `a` (input domain) and `b` (output domain), paired (one
order) or unpaired (two independent orders, and the two domains may differ in size and channels).

- `paired_folder`: the pix2pix layout — `root/<split>/*` images holding A|B side by side (`direction` picks
  which half is the input) — or `root/A/<split>/` and `root/B/<split>/` with matching file names.
- `unpaired_folder`: the CycleGAN layout `root/trainA`, `root/trainB` (`testA`, `testB`).
- Embedded and offline: `shapes_paired` (a shape's outline → the filled, coloured shape), `shapes_unpaired`
  (filled shapes on black ↔ outlined shapes on white, from different images), `fashion_edges` (real
  Fashion-MNIST: edges → garment, with the labels), `mnist_styles` (real MNIST digits ↔ other digits
  inverted and thickened, unpaired, with the labels).
- `dataset.fetch=<name>` downloads a public pix2pix or CycleGAN set (facades, maps, edges2shoes, ...,
  horse2zebra, ...) into `root` first; offline, the message names the archive and where to unpack it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F

from gancli.core.errors import GanError
from gancli.data.base import DATASETS, DataSpec, Field, in_memory_source
from gancli.data.files import IMAGE_EXTS, readable_images
from gancli.data.shapes import SHAPES, render_shapes

log = logging.getLogger("gancli")
PIX2PIX_SETS = ("cityscapes", "edges2handbags", "edges2shoes", "facades", "maps", "night2day")
CYCLEGAN_SETS = (
    "apple2orange",
    "cezanne2photo",
    "horse2zebra",
    "maps",
    "monet2photo",
    "summer2winter_yosemite",
    "ukiyoe2photo",
    "vangogh2photo",
)
URLS = {
    "pix2pix": "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz",
    "cyclegan": "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip",
}


def _mask_outline(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask, outline) of shapes drawn on black: float (N, 1, R, R) in {0, 1}."""
    mask = (images.amax(1, keepdim=True) > 40).float()
    eroded = -F.max_pool2d(-mask, 3, 1, 1)
    return mask, (mask - eroded).clamp(0, 1)


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def paired_spec(ca: int, cb: int, r: int, labels: int = 0, names=()) -> DataSpec:
    fields = {"a": Field("image", (ca, r, r)), "b": Field("image", (cb, r, r))}
    if labels:
        fields["y"] = Field("label", (), labels, tuple(names))
    return DataSpec(fields)


@DATASETS.register("shapes_paired")
def shapes_paired(n: int = 10000, resolution: int = 32, seed: int = 4321, rotation: float = 15.0):
    images, labels = render_shapes(n, resolution, seed, SHAPES, rotation)
    _, outline = _mask_outline(images)
    return in_memory_source(
        paired_spec(1, 3, resolution, len(SHAPES), SHAPES),
        {"a": _to_uint8(outline), "b": images, "y": labels},
        f"shapes_paired: {n} outline → coloured shape pairs, {resolution}px",
    )


@DATASETS.register("shapes_unpaired")
def shapes_unpaired(n: int = 10000, resolution: int = 32, seed: int = 4321, rotation: float = 15.0):
    a, ya = render_shapes(n, resolution, seed, SHAPES, rotation)
    other, yb = render_shapes(n, resolution, seed + 1, SHAPES, rotation)
    _, outline = _mask_outline(other)
    colour = other.float() / 255 / other.float().div(255).amax((2, 3), keepdim=True).clamp(min=1e-6)
    b = torch.where(outline.bool(), colour * 0.8, torch.ones_like(colour))  # coloured outlines on white
    spec = DataSpec(
        {
            "a": Field("image", (3, resolution, resolution)),
            "y_a": Field("label", (), 5, SHAPES),
            "b": Field("image", (3, resolution, resolution)),
            "y_b": Field("label", (), 5, SHAPES),
        },
        groups=(("a", "y_a"), ("b", "y_b")),
    )
    return in_memory_source(
        spec,
        [{"a": a, "y_a": ya}, {"b": _to_uint8(b), "y_b": yb}],
        f"shapes_unpaired: {n} filled shapes on black, {n} other outlined shapes on white",
    )


def _idx_images(name: str, root, split: str, download: bool):
    from omegaconf import OmegaConf

    from gancli.data.base import build_dataset

    source = build_dataset(
        OmegaConf.create({"name": name, "root": root, "split": split, "resolution": 32, "download": download})
    )
    batch = source.reference(10**7)
    return ((batch["x"] + 1) * 127.5).round().to(torch.uint8), batch["y"], source.spec["y"].class_names


def sobel_edges(images: torch.Tensor, threshold: float = 0.25) -> torch.Tensor:
    """Binary edge maps (N, 1, R, R) of uint8 grey images: Sobel magnitude above `threshold` of its maximum."""
    x = images.float() / 255
    kx = torch.tensor([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]]).view(1, 1, 3, 3)
    gx, gy = F.conv2d(x, kx, padding=1), F.conv2d(x, kx.transpose(2, 3), padding=1)
    mag = (gx**2 + gy**2).sqrt()
    return (mag > threshold * mag.amax((2, 3), keepdim=True).clamp(min=1e-6)).float()


@DATASETS.register("fashion_edges")
def fashion_edges(root="data", split="train", download=True):
    x, y, names = _idx_images("fashion_mnist", root, split, download)
    return in_memory_source(
        paired_spec(1, 1, 32, len(names), names),
        {"a": _to_uint8(sobel_edges(x)), "b": x, "y": y},
        f"fashion_edges ({split}): {len(x)} edge map → garment pairs, 32px",
    )


@DATASETS.register("mnist_styles")
def mnist_styles(root="data", split="train", download=True):
    """Domain A: half of the digits as they are; domain B: the other half, inverted and thickened."""
    x, y, names = _idx_images("mnist", root, split, download)
    half = len(x) // 2
    thick = F.max_pool2d(x[half:].float(), 3, 1, 1)
    b = (255 - thick).clamp(0, 255).to(torch.uint8)
    spec = DataSpec(
        {
            "a": Field("image", (1, 32, 32)),
            "y_a": Field("label", (), 10, names),
            "b": Field("image", (1, 32, 32)),
            "y_b": Field("label", (), 10, names),
        },
        groups=(("a", "y_a"), ("b", "y_b")),
    )
    return in_memory_source(
        spec,
        [{"a": x[:half], "y_a": y[:half]}, {"b": b, "y_b": y[half:]}],
        f"mnist_styles ({split}): {half} digits ↔ {len(x) - half} other digits inverted and thickened",
    )


# ------------------------------------------------------------------------------------------ folders


def _fetch(name: str, root: Path, kind: str) -> None:
    """Download and unpack a public set into root.parent (its archive unpacks to a folder named after it)."""
    import shutil
    import tempfile
    import urllib.request

    sets = PIX2PIX_SETS if kind == "pix2pix" else CYCLEGAN_SETS
    if name not in sets:
        raise GanError(f"dataset.fetch={name} is not a public {kind} set; choose one of: {', '.join(sets)}.")
    url = URLS[kind].format(name=name)
    root.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / url.rsplit("/", 1)[1]
            with urllib.request.urlopen(url, timeout=60) as response, open(archive, "wb") as f:
                shutil.copyfileobj(response, f)
            shutil.unpack_archive(str(archive), str(root.parent))
    except Exception as exc:  # network errors come in many types
        raise GanError(
            f"could not download {name} ({type(exc).__name__}: {exc}). Fetch {url} and unpack it so that "
            f"{root} holds its folders, then run again (dataset.root={root})."
        ) from None


def _images(folder: Path) -> list[Path]:
    return (
        sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS) if folder.is_dir() else []
    )


def _channels(path: Path) -> int:
    from PIL import Image

    with Image.open(path) as im:
        return 1 if im.mode in ("L", "1", "I;16", "I") else 3


def _decode(paths: list[Path], resolution: int, channels: int, half: str | None = None) -> torch.Tensor:
    """uint8 (N, C, R, R); half: 'left' / 'right' of side-by-side pairs."""
    import torchvision.transforms.functional as TF
    from PIL import Image

    out, sizes = [], set()
    for p in paths:
        with Image.open(p) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            sizes.add(im.size)
            if half is not None:
                w, h = im.size
                im = im.crop((0, 0, w // 2, h) if half == "left" else (w // 2, 0, w, h))
            im = TF.center_crop(TF.resize(im, resolution, antialias=True), resolution)
            out.append(TF.pil_to_tensor(im))
    if len(sizes) > 1:
        log.warning("the images have %d different sizes; all are resized to %d px", len(sizes), resolution)
    return torch.stack(out)


@DATASETS.register("paired_folder")
def paired_folder(root, split="train", resolution=256, direction="AtoB", fetch=None):
    if direction not in ("AtoB", "BtoA"):
        raise GanError(f"dataset.direction={direction} is not one of: AtoB, BtoA.")
    root = Path(str(root)).expanduser()
    if fetch and not root.exists():
        _fetch(str(fetch), root, "pix2pix")
    side = readable_images(_images(root / split), str(root / split)) if _images(root / split) else []
    if side:  # the pix2pix layout: A|B in one file
        a = _decode(side, resolution, _channels(side[0]), "left")
        b = _decode(side, resolution, _channels(side[0]), "right")
        where = f"{root / split} (A|B side by side)"
    else:
        fa, fb = _images(root / "A" / split), _images(root / "B" / split)
        if not fa and not fb:
            raise GanError(
                f"paired_folder found no images under {root / split} (A|B side by side) nor under "
                f"{root / 'A' / split} and {root / 'B' / split} (matching names)."
            )
        names_a, names_b = {p.name for p in fa}, {p.name for p in fb}
        if names_a != names_b:
            only_a, only_b = sorted(names_a - names_b), sorted(names_b - names_a)
            raise GanError(
                f"paired_folder: {root / 'A' / split} and {root / 'B' / split} must hold the same file "
                f"names; {len(only_a)} only in A (e.g. {only_a[:3]}), {len(only_b)} only in B "
                f"(e.g. {only_b[:3]})."
            )
        fb = [root / "B" / split / p.name for p in fa]
        a, b = _decode(fa, resolution, _channels(fa[0])), _decode(fb, resolution, _channels(fb[0]))
        where = f"{root / 'A' / split} ↔ {root / 'B' / split}"
    if direction == "BtoA":
        a, b = b, a
    return in_memory_source(
        paired_spec(a.shape[1], b.shape[1], resolution),
        {"a": a, "b": b},
        f"paired_folder: {len(a)} pairs from {where}, {resolution}px, {direction}",
    )


@DATASETS.register("unpaired_folder")
def unpaired_folder(root, split="train", resolution=256, fetch=None):
    root = Path(str(root)).expanduser()
    if fetch and not root.exists():
        _fetch(str(fetch), root, "cyclegan")
    parts = {}
    for d in ("A", "B"):
        folder = root / f"{split}{d}"
        files = _images(folder)
        if not files:
            raise GanError(
                f"unpaired_folder: {folder} holds no images; the CycleGAN layout is {root}/trainA, "
                f"{root}/trainB (and testA, testB)."
            )
        files = readable_images(files, str(folder))
        parts[d] = _decode(files, resolution, _channels(files[0]))
    a, b = parts["A"], parts["B"]
    spec = DataSpec(
        {
            "a": Field("image", (a.shape[1], resolution, resolution)),
            "b": Field("image", (b.shape[1], resolution, resolution)),
        },
        groups=(("a",), ("b",)),
    )
    return in_memory_source(
        spec, [{"a": a}, {"b": b}], f"unpaired_folder: {len(a)} images of A, {len(b)} of B ({split}), {resolution}px"
    )
