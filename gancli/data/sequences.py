"""Time series as named fields: `x` of kind "sequence", shape (T, C) per sample (steps, channels), plus `y`
labels where there are classes.

- `sines`: the RGAN paper's sines, x_t = A·sin(2πf·t/T + φ), f ~ U[1, 5], A ~ U[0.1, 0.9], φ ~ U[−π, π];
  `bands` > 0 labels each sequence by its frequency band (for rcgan).
- `smooth`: draws from a Gaussian process with an RBF kernel (the paper's "smooth signals").
- `mnist_seq`, `fashion_mnist_seq`: the images as sequences: resized to 14×14 as the authors' data_utils
  does (a per-image min-max stretch, then Lanczos resampling) and read one row of 14 values per step (their
  MNIST settings), or flattened to 196 steps of 1 value, or 28 rows of 28; `part` takes the authors' random
  60/20/20 split of the images kept (their TSTR protocol trains on 60 %, selects on 20 %, tests on 20 %).
- `timeseries_file`: the user's data from .npy, .npz (`x` or `sequences`, optional `labels`) or .csv;
  (N, T, C) sequences, or one long series cut into windows.

Values a network sees are scaled per channel into [-1, 1] where the data need it; the scale travels in the
field's extras (and so in every checkpoint), and `unscale` brings samples back to the data's own units.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gancli.core.errors import GanError
from gancli.core.rules import integer, one_of
from gancli.data.base import DATASETS, Field, in_memory_source, labelled, with_rules


def scale_to_unit(x: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Per channel, min → −1 and max → +1; the scale as plain data (a constant channel maps to 0)."""
    lo = x.amin(dim=(0, 1))
    hi = x.amax(dim=(0, 1))
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    return (x - lo) / span * 2 - 1, {"min": lo.tolist(), "max": hi.tolist()}


def unscale(x: torch.Tensor, field: Field) -> torch.Tensor:
    """Network units → the data's own units (the identity for fields that were not scaled)."""
    scale = field.extras.get("scale")
    if not scale:
        return x
    lo = torch.tensor(scale["min"], dtype=x.dtype, device=x.device)
    hi = torch.tensor(scale["max"], dtype=x.dtype, device=x.device)
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    return (x + 1) / 2 * span + lo


def sequence_source(x: torch.Tensor, y: torch.Tensor | None, classes, description: str, scale: dict | None = None):
    field = Field("sequence", tuple(x.shape[1:]), extras={"scale": scale} if scale else {})
    spec = labelled(field, len(classes) if y is not None else 0, classes)
    tensors = {"x": x.float()}
    if y is not None:
        tensors["y"] = y.long()
    return in_memory_source(spec, tensors, description)


@DATASETS.register("sines")
def sines(
    n: int = 14000,
    length: int = 30,
    channels: int = 1,
    bands: int = 0,
    seed: int = 1234,
    freq=(1.0, 5.0),
    amplitude=(0.1, 0.9),
):
    if n < 1 or length < 2 or channels < 1 or bands < 0:
        raise GanError(
            f"dataset sines: n={n}, length={length}, channels={channels}, bands={bands}: n ≥ 1, "
            "length ≥ 2, channels ≥ 1, bands ≥ 0."
        )
    g = torch.Generator().manual_seed(seed)
    f = freq[0] + (freq[1] - freq[0]) * torch.rand(n, 1, channels, generator=g)
    a = amplitude[0] + (amplitude[1] - amplitude[0]) * torch.rand(n, 1, channels, generator=g)
    phase = (torch.rand(n, 1, channels, generator=g) * 2 - 1) * math.pi
    t = torch.arange(length, dtype=torch.float32).view(1, length, 1)
    x = a * torch.sin(2 * math.pi * f * t / length + phase)
    y, classes = None, ()
    if bands:  # the first channel's frequency, in `bands` equal bands of the range
        y = ((f[:, 0, 0] - freq[0]) / (freq[1] - freq[0]) * bands).long().clamp(max=bands - 1)
        edges = [freq[0] + (freq[1] - freq[0]) * i / bands for i in range(bands + 1)]
        classes = tuple(f"{edges[i]:.2f}-{edges[i + 1]:.2f}" for i in range(bands))
    return sequence_source(
        x,
        y,
        classes,
        f"sines: {n} sequences of {length} steps, {channels} channel(s)"
        + (f", {bands} frequency bands" if bands else ""),
    )


@DATASETS.register("smooth")
def smooth(
    n: int = 14000,
    length: int = 30,
    channels: int = 1,
    length_scale: float = 2.236,
    variance: float = 0.2,
    normalise: bool = False,
    seed: int = 1234,
):
    """x ~ GP(0, k), k(t, t') = variance·exp(−(t − t')² / (2ℓ²)) with ℓ in steps, per channel."""
    if length_scale <= 0 or variance <= 0:
        raise GanError(f"dataset.length_scale={length_scale} and dataset.variance={variance} must be > 0.")
    t = torch.arange(length, dtype=torch.float64)
    k = variance * torch.exp(-((t[:, None] - t[None, :]) ** 2) / (2 * length_scale**2)) + 1e-6 * torch.eye(
        length, dtype=torch.float64
    )
    chol = torch.linalg.cholesky(k)
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn(n, channels, length, generator=g, dtype=torch.float64)
    x = (eps @ chol.T).transpose(1, 2).float()  # (n, T, C)
    scale = None
    if normalise:
        x, scale = scale_to_unit(x)
    return sequence_source(
        x, None, (), f"smooth: {n} GP draws (RBF, ℓ = {length_scale} steps) of {length} steps", scale
    )


LAYOUTS = ("rows14", "flat14", "rows")
RESIZES = ("lanczos", "avgpool")
PARTS = ("all", "train", "vali", "test")
PROPORTIONS = (0.6, 0.2, 0.2)  # the authors' data_utils.split: train, validation, test


def minmax_stretch(x: torch.Tensor) -> torch.Tensor:
    """Each image (the last two dims) mapped linearly onto [−1, 1]: its darkest pixel to −1, its brightest to
    +1 (a constant image to −1, as scipy's bytescale maps it to 0)."""
    x = x.double()
    lo, hi = x.amin((-2, -1), keepdim=True), x.amax((-2, -1), keepdim=True)
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    return (x - lo) / span * 2 - 1


def resize_lanczos(x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, H, W) images → (N, size, size) in [−1, 1] as the authors' `load_resized_mnist` makes them with
    scipy.misc.imresize(img, [size, size], interp='lanczos') on images in [−1, 1]: each image min-max stretched
    to 0..255 and rounded to bytes (scipy's bytescale), Lanczos-resampled by PIL in 8 bits, then /255 → [−1, 1]."""
    from PIL import Image

    stretched = ((minmax_stretch(x) + 1) * 127.5).clamp(0, 255)
    as_bytes = (stretched + 0.5).floor().to(torch.uint8).numpy()
    lanczos = Image.Resampling.LANCZOS
    out = np.stack([np.asarray(Image.fromarray(img).resize((size, size), lanczos)) for img in as_bytes])
    return torch.from_numpy(out).float() / 255 * 2 - 1


def split_part(n: int, part: str, seed: int) -> torch.Tensor:
    """Indices of `part` in the authors' random split of n samples: ceil(60 %) train, ceil(20 %) test, the rest
    validation, taken in that order (train, validation, test) from one permutation."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    n_train, n_test = math.ceil(n * PROPORTIONS[0]), math.ceil(n * PROPORTIONS[2])
    n_vali = n - n_train - n_test
    bounds = {"train": (0, n_train), "vali": (n_train, n_train + n_vali), "test": (n_train + n_vali, n)}
    lo, hi = bounds[part]
    return perm[lo:hi].sort().values


def _image_sequences(
    name: str, root, split: str, layout: str, download: bool, digits=None, resize="lanczos", part="all", part_seed=0
):
    from omegaconf import OmegaConf

    from gancli.data.base import build_dataset

    if layout not in LAYOUTS:
        raise GanError(
            f"dataset.layout='{layout}' is not one of: rows14 (14 steps of 14 values, the authors' "
            "MNIST settings), flat14 (14×14 flattened: 196 steps of 1 value), rows (28 steps of 28 values)."
        )
    if resize not in RESIZES:
        raise GanError(
            f"dataset.resize='{resize}' is not one of: lanczos (the authors': a per-image min-max "
            "stretch, then Lanczos resampling), avgpool (2 × 2 means)."
        )
    if part not in PARTS:
        raise GanError(
            f"dataset.part='{part}' is not one of: {', '.join(PARTS)} (the authors' random 60/20/20 "
            "split of the images kept; all: every one)."
        )
    source = build_dataset(
        OmegaConf.create({"name": name, "root": root, "split": split, "resolution": 28, "download": download})
    )
    batch = source.reference(10**7)  # every image, in order
    x, y = batch["x"], batch["y"]  # (N, 1, 28, 28) in [-1, 1]
    classes = source.spec["y"].class_names
    if digits is not None:
        keep = [int(d) for d in digits]
        if not keep or any(not 0 <= d < len(classes) for d in keep):
            raise GanError(f"dataset.digits={digits}: a list of classes from 0 to {len(classes) - 1}.")
        mask = torch.isin(y, torch.tensor(keep))
        remap = {d: i for i, d in enumerate(keep)}
        x, y = x[mask], torch.tensor([remap[int(v)] for v in y[mask]])
        classes = tuple(classes[d] for d in keep)
    kept = len(x)
    if part != "all":
        idx = split_part(kept, part, part_seed)
        x, y = x[idx], y[idx]
    if layout == "rows":
        x = x[:, 0]  # (N, 28, 28): rows as steps
    else:
        x14 = resize_lanczos(x[:, 0], 14) if resize == "lanczos" else F.avg_pool2d(x, 2)[:, 0]
        x = x14.flatten(1).unsqueeze(-1) if layout == "flat14" else x14  # (N, 196, 1) or (N, 14, 14)
    where = "" if part == "all" else f", the authors' {part} part ({len(x)} of {kept})"
    return sequence_source(
        x, y, classes, f"{name} ({split}{where}) as sequences: {len(x)} of {x.shape[1]} steps × {x.shape[2]} channel(s)"
    )


IMAGE_SEQUENCE_RULES = {
    "layout": one_of("rows14", "flat14", "rows"),
    "resize": one_of("lanczos", "avgpool"),
    "part": one_of("all", "train", "vali", "test"),
    "part_seed": integer(0),
}


@DATASETS.register("mnist_seq")
@with_rules(**IMAGE_SEQUENCE_RULES)
def mnist_seq(
    root="data", split="train", layout="rows14", digits=None, download=True, resize="lanczos", part="all", part_seed=0
):
    return _image_sequences("mnist", root, split, layout, download, digits, resize, part, part_seed)


@DATASETS.register("fashion_mnist_seq")
@with_rules(**IMAGE_SEQUENCE_RULES)
def fashion_mnist_seq(
    root="data", split="train", layout="rows14", digits=None, download=True, resize="lanczos", part="all", part_seed=0
):
    return _image_sequences("fashion_mnist", root, split, layout, download, digits, resize, part, part_seed)


# ------------------------------------------------------------------------------------------ the user's file


def _read(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    if not path.is_file():
        raise GanError(f"dataset.path={path} does not exist: timeseries_file reads a .npy, .npz or .csv file.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False), None
        if suffix == ".npz":
            data = np.load(path, allow_pickle=False)
            key = next((k for k in ("x", "sequences") if k in data.files), None)
            if key is None:
                raise GanError(
                    f"dataset.path={path} holds {', '.join(data.files)}; timeseries_file reads `x` or "
                    "`sequences` (N, T, C), and optional `labels` (N,)."
                )
            return data[key], (data["labels"] if "labels" in data.files else None)
        if suffix == ".csv":
            return _read_csv(path), None
    except (OSError, ValueError) as exc:
        raise GanError(f"dataset.path={path} cannot be read: {exc}.") from None
    raise GanError(f"dataset.path={path}: timeseries_file reads .npy, .npz or .csv files, not '{suffix}'.")


def _read_csv(path: Path) -> np.ndarray:
    """A numeric table: one row per time step, one column per channel; one header line is allowed."""
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    rows = []
    for i, line in enumerate(lines):
        try:
            rows.append([float(v) for v in line.split(",")])
        except ValueError:
            if i == 0:  # a header
                continue
            raise GanError(
                f"dataset.path={path}: line {i + 1} is not numeric ({line[:60]!r}); a csv must hold "
                "one row of numbers per time step, one column per channel."
            ) from None
    if not rows:
        raise GanError(f"dataset.path={path} has no numeric rows.")
    if len({len(r) for r in rows}) > 1:
        raise GanError(f"dataset.path={path}: the rows have different numbers of columns.")
    return np.asarray(rows, dtype=np.float64)


def windows(series: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """(L, C) or (N, L, C) → (M, window, C): every window of `window` steps starting each `stride` steps."""
    if series.dim() == 2:
        series = series.unsqueeze(0)
    length = series.shape[1]
    if window > length:
        raise GanError(f"dataset.window={window} is longer than the series ({length} steps).")
    starts = range(0, length - window + 1, stride)
    return torch.cat([series[:, s : s + window] for s in starts])


@DATASETS.register("timeseries_file")
def timeseries_file(path, window=None, stride=None, normalise: bool = True):
    path = Path(str(path)).expanduser()
    arr, labels = _read(path)
    if arr.dtype.kind not in "fiu":
        raise GanError(f"dataset.path={path} holds {arr.dtype} values; timeseries_file needs numbers.")
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise GanError(
            f"dataset.path={path} holds {int(bad.sum())} NaN or infinite value(s), the first at index "
            f"{first}; fill or drop them first."
        )
    x = torch.from_numpy(np.asarray(arr, dtype=np.float32))
    if x.dim() == 1:
        x = x.unsqueeze(-1)  # one channel
    if x.dim() not in (2, 3):
        raise GanError(
            f"dataset.path={path} holds an array of shape {tuple(arr.shape)}; timeseries_file reads "
            "(N, T, C) sequences, (N, T) one-channel sequences... or one long series (T, C) with "
            "dataset.window."
        )
    if labels is not None and (x.dim() != 3 or len(labels) != len(x)):
        raise GanError(
            f"dataset.path={path}: {len(labels)} labels for {len(x) if x.dim() == 3 else 1} sequence(s); "
            "there must be one label per sequence."
        )
    if x.dim() == 2 and window is None:
        raise GanError(
            f"dataset.path={path} holds one series of {x.shape[0]} steps; cut it into training sequences "
            "with dataset.window=<steps> (and dataset.stride=<steps>)."
        )
    if window is not None:
        w, s = int(window), int(stride or window)
        if w < 2 or s < 1:
            raise GanError(f"dataset.window={window} and dataset.stride={stride}: a window of ≥ 2 steps, a stride ≥ 1.")
        per = x.shape[1] - w + 1 if x.dim() == 3 else None
        x_windows = windows(x, w, s)
        if labels is not None:
            labels = np.repeat(labels, len(range(0, per, s)))
        x = x_windows
    scale = None
    if normalise:
        x, scale = scale_to_unit(x)
    y, classes = None, ()
    if labels is not None:
        values = sorted(set(np.asarray(labels).tolist()))
        index = {v: i for i, v in enumerate(values)}
        y = torch.tensor([index[v] for v in np.asarray(labels).tolist()])
        classes = tuple(str(v) for v in values)
    return sequence_source(
        x, y, classes, f"{path.name}: {len(x)} sequences of {x.shape[1]} steps × {x.shape[2]} channel(s)", scale
    )
