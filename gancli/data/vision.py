"""Real image datasets: MNIST / Fashion-MNIST (IDX files), CIFAR-10 and CelebA (torchvision), image folders.

Downloads go through torchvision where it can; offline, a missing dataset is one GanError that says
which files to fetch and where to put them.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import torch
import torch.nn.functional as F

from gancli.core.errors import GanError
from gancli.data.base import DATASETS, DataSource, Field, in_memory_source, labelled
from gancli.data.files import IMAGE_EXTS, ImageFiles, file_source, readable_images

IDX_SETS = {
    "mnist": ("MNIST", ()),
    "fashion_mnist": ("FashionMNIST", ("/usr/share/datasets/fashion-mnist",)),
}
SPLIT_PREFIX = {"train": "train", "test": "t10k"}
MNIST_CLASSES = tuple(str(i) for i in range(10))
FASHION_CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")


def read_idx(path: Path) -> torch.Tensor:
    """An IDX file (optionally gzipped) as a uint8 tensor; the format is 4 header bytes + big-endian dims."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
        zero, dtype, ndim = struct.unpack(">HBB", data[:4])
        if zero != 0 or dtype != 0x08:
            raise ValueError("not an unsigned-byte IDX file")
        dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
        return torch.frombuffer(bytearray(data[4 + 4 * ndim :]), dtype=torch.uint8).reshape(dims)
    except (OSError, ValueError, EOFError, struct.error, RuntimeError, zlib.error) as exc:
        raise GanError(f"cannot read IDX file {path}: {exc}. Delete it and fetch it again.") from None


def _find_idx(dirs: list[Path], stem: str) -> Path | None:
    for d in dirs:
        for name in (stem, stem + ".gz"):
            if (d / name).is_file():
                return d / name
    return None


def _idx_dirs(root: Path, folder: str, extra: tuple[str, ...]) -> list[Path]:
    """The dataset's own folders first: MNIST and Fashion-MNIST share file names."""
    return [root / folder / "raw", root / folder, *map(Path, extra), root, root / "raw"]


def _download_idx(name: str, root: Path) -> None:
    import torchvision

    cls = getattr(torchvision.datasets, IDX_SETS[name][0])
    try:
        cls(str(root), train=True, download=True)
        cls(str(root), train=False, download=True)
    except Exception as exc:  # network errors come in many types (URLError, socket, HTTP)
        raise _missing(name, root, f"the download failed ({type(exc).__name__}: {exc})") from None


def _missing(name: str, root: Path, why: str) -> GanError:
    folder = IDX_SETS[name][0]
    return GanError(
        f"dataset '{name}' not found under {root} and {why}. Put the IDX files "
        f"(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, "
        f"gzipped or not) in {root / folder / 'raw'} or pass dataset.root=<folder holding them>; "
        f"with a network, dataset.download=true fetches them there."
    )


def _resize(x: torch.Tensor, resolution: int) -> torch.Tensor:
    if x.shape[-1] == resolution:
        return x
    y = F.interpolate(x.float(), size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
    return y.round().clamp(0, 255).to(torch.uint8)


def _subset(x: torch.Tensor, y: torch.Tensor, subset, name: str):
    """subset=[start, stop]: keep samples start..stop-1 (e.g. a train/held-out split of one file)."""
    if subset is None:
        return x, y
    try:
        start, stop = (int(v) for v in subset)
    except (TypeError, ValueError):
        raise GanError(f"dataset.subset={subset} must be [start, stop], e.g. [0, 8000].") from None
    if not 0 <= start < stop <= len(x):
        raise GanError(f"dataset.subset=[{start}, {stop}] is outside dataset '{name}' ({len(x)} samples).")
    return x[start:stop], y[start:stop]


def _idx_dataset(name: str, root, split: str, resolution: int, download: bool, classes, subset=None) -> DataSource:
    root = Path(root).expanduser()
    folder, extra = IDX_SETS[name]
    dirs = _idx_dirs(root, folder, extra)
    splits = ["train", "test"] if split == "all" else [split]
    if any(s not in SPLIT_PREFIX for s in splits):
        raise GanError(f"dataset.split='{split}' is not one of: train, test, all.")
    xs, ys = [], []
    for s in splits:
        img = _find_idx(dirs, f"{SPLIT_PREFIX[s]}-images-idx3-ubyte")
        lab = _find_idx(dirs, f"{SPLIT_PREFIX[s]}-labels-idx1-ubyte")
        if img is None or lab is None:
            if download:
                _download_idx(name, root)
                img = _find_idx(dirs, f"{SPLIT_PREFIX[s]}-images-idx3-ubyte")
                lab = _find_idx(dirs, f"{SPLIT_PREFIX[s]}-labels-idx1-ubyte")
            if img is None or lab is None:
                other = [o for o in SPLIT_PREFIX if o != s and _find_idx(dirs, f"{SPLIT_PREFIX[o]}-images-idx3-ubyte")]
                hint = f" (the {other[0]} split is there: dataset.split={other[0]})" if other else ""
                raise _missing(
                    name, root, f"the {s} split is missing{hint}" + ("" if download else ", download is off")
                )
        xs.append(read_idx(img)[:, None])
        ys.append(read_idx(lab).long())
    x, y = torch.cat(xs), torch.cat(ys)
    if len(x) != len(y):
        raise GanError(f"dataset '{name}': {len(x)} images but {len(y)} labels under {root}; the files do not match.")
    x, y = _subset(x, y, subset, name)
    x = _resize(x, resolution)
    spec = labelled(Field("image", (1, resolution, resolution)), 10, classes)
    part = f" [{subset[0]}:{subset[1]}]" if subset is not None else ""
    return in_memory_source(spec, {"x": x, "y": y}, f"{name} ({split}{part}): {len(x)} images, {resolution}px")


@DATASETS.register("mnist")
def mnist(root="data", split="train", resolution=28, download=True, subset=None):
    return _idx_dataset("mnist", root, split, resolution, download, MNIST_CLASSES, subset)


@DATASETS.register("fashion_mnist")
def fashion_mnist(root="data", split="train", resolution=28, download=True, subset=None):
    return _idx_dataset("fashion_mnist", root, split, resolution, download, FASHION_CLASSES, subset)


@DATASETS.register("cifar10")
def cifar10(root="data", split="train", resolution=32, download=True):
    import torchvision

    root = Path(root).expanduser()
    splits = {"train": [True], "test": [False], "all": [True, False]}.get(split)
    if splits is None:
        raise GanError(f"dataset.split='{split}' is not one of: train, test, all.")
    xs, ys = [], []
    for train in splits:
        try:
            ds = torchvision.datasets.CIFAR10(str(root), train=train, download=False)
        except RuntimeError:
            if not download:
                raise _cifar_missing(root, "download is off") from None
            try:
                ds = torchvision.datasets.CIFAR10(str(root), train=train, download=True)
            except Exception as exc:
                raise _cifar_missing(root, f"the download failed ({type(exc).__name__}: {exc})") from None
        xs.append(torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous())
        ys.append(torch.tensor(ds.targets, dtype=torch.long))
    x = _resize(torch.cat(xs), resolution)
    spec = labelled(Field("image", (3, resolution, resolution)), 10, tuple(ds.classes))
    return in_memory_source(spec, {"x": x, "y": torch.cat(ys)}, f"cifar10 ({split}): {len(x)} images, {resolution}px")


def _cifar_missing(root: Path, why: str) -> GanError:
    return GanError(
        f"dataset 'cifar10' not found under {root} and {why}. Fetch cifar-10-python.tar.gz "
        f"(from https://www.cs.toronto.edu/~kriz/cifar.html) and put it, or its extracted cifar-10-batches-py/, "
        f"in {root}; or pass dataset.root=<that folder>."
    )


# ------------------------------------------------------------------------------- file-backed image sets


def image_files_source(
    name: str,
    paths: list[Path],
    labels: list[int] | None,
    class_names: tuple[str, ...],
    resolution: int,
    crop: int | None,
    in_memory,
    max_memory_mb: int,
    num_workers: int = 2,
) -> DataSource:
    """RGB image files as fields x (and y when there are two or more classes)."""
    labelled_ = labels is not None and len(class_names) > 1
    spec = labelled(
        Field("image", (3, resolution, resolution)),
        len(class_names) if labelled_ else 0,
        class_names if labelled_ else (),
    )
    files = ImageFiles(paths, labels if labelled_ else None, resolution, crop)
    return file_source(
        spec,
        [files],
        f"{name}: {len(paths)} images, {resolution}px",
        len(paths) * 3 * resolution * resolution,
        in_memory,
        max_memory_mb,
        num_workers,
    )


@DATASETS.register("image_folder")
def image_folder(root, resolution=64, in_memory="auto", max_memory_mb=4096, num_workers=2):
    root = Path(str(root)).expanduser()
    if not root.is_dir():
        raise GanError(f"dataset.root={root} is not a folder. image_folder needs a folder tree of images.")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
    if not paths:
        raise GanError(f"no images ({', '.join(sorted(IMAGE_EXTS))}) found under {root}.")
    paths = readable_images(paths, str(root))
    rel = [p.relative_to(root).parts for p in paths]
    if any(len(r) == 1 for r in rel):  # loose images beside the sub-folders: no class structure to trust
        tops, labels = (), None
    else:
        tops = tuple(sorted({r[0] for r in rel}))
        index = {name: i for i, name in enumerate(tops)}
        labels = [index[r[0]] for r in rel]
    return image_files_source(
        "image_folder", paths, labels, tops, resolution, None, in_memory, max_memory_mb, num_workers
    )


@DATASETS.register("celeba")
def celeba(
    root="data",
    split="train",
    resolution=64,
    crop=148,
    download=True,
    in_memory="auto",
    max_memory_mb=4096,
    num_workers=2,
):
    import torchvision

    if split not in ("train", "valid", "test", "all"):
        raise GanError(f"dataset.split='{split}' is not one of: train, valid, test, all.")
    root = Path(root).expanduser()
    try:
        ds = torchvision.datasets.CelebA(str(root), split=split, target_type=[], download=False)
    except RuntimeError:
        why = "download is off"
        if download:
            try:
                ds = torchvision.datasets.CelebA(str(root), split=split, target_type=[], download=True)
                why = ""
            except Exception as exc:
                why = f"the download failed ({type(exc).__name__}: {exc})"
        if why:
            raise GanError(
                f"dataset 'celeba' not found under {root} and {why}. Put img_align_celeba/ (or "
                f"img_align_celeba.zip) and list_eval_partition.txt, identity_CelebA.txt, list_attr_celeba.txt, "
                f"list_bbox_celeba.txt, list_landmarks_align_celeba.txt in {root / 'celeba'}."
            ) from None
    base = Path(ds.root) / ds.base_folder / "img_align_celeba"
    paths = [base / f for f in ds.filename]
    return image_files_source("celeba", paths, None, (), resolution, crop, in_memory, max_memory_mb, num_workers)
