"""File-backed data: a torch Dataset whose items are dicts of named fields, decoded by DataLoader workers,
pinned and copied asynchronously to the device — or, when it fits, decoded once into memory.

`ImageFiles` is the item type of the image datasets; other layouts (paired folders, two domains) are
other Datasets of dicts and reuse `FileStream` and `file_source` unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from gancli.core.errors import GanError
from gancli.data.base import (
    Batch,
    DataSource,
    DataSpec,
    IndependentStreams,
    Stream,
    as_model_input,
    group_seed,
    in_memory_source,
    rank_share,
    reference_indices,
    to_float_image,
)

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def decode_image(path: Path, resolution: int, crop: int | None = None, mode: str = "RGB") -> torch.Tensor:
    """One image file → uint8 (C, R, R): optionally centre-cropped to `crop`, resized (short side) and
    centre-cropped to R."""
    import torchvision.transforms.functional as TF
    from PIL import Image

    try:
        im = Image.open(path)
        im.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise GanError(f"cannot decode image {path}: {exc}") from None
    with im:
        im = im.convert(mode)
        if crop:
            im = TF.center_crop(im, crop)
        im = TF.resize(im, resolution, antialias=True)
        im = TF.center_crop(im, resolution)
        return TF.pil_to_tensor(im)


def readable_images(paths: Sequence[Path], where: str) -> list[Path]:
    """The paths whose files open and verify as images; the others are skipped with one warning that counts
    them (a corrupt or truncated file among thousands should not end the run). None readable: an error."""
    import logging

    from PIL import Image

    good, bad = [], []
    for p in paths:
        try:
            with Image.open(p) as im:
                im.verify()
            good.append(p)
        except Exception as exc:  # PIL raises many kinds for broken files
            bad.append((p, f"{type(exc).__name__}: {exc}"))
    if bad:
        first, why = bad[0]
        if not good:
            raise GanError(f"none of the {len(bad)} image files under {where} can be read (first: {first}: {why}).")
        logging.getLogger("gancli").warning(
            "skipped %d of %d image files under %s that cannot be read (first: %s: %s)",
            len(bad),
            len(paths),
            where,
            first,
            why,
        )
    return good


class ImageFiles(torch.utils.data.Dataset):
    """Items {image_field: uint8 (3, R, R)} plus {label_field: class} when labels are given."""

    def __init__(
        self,
        paths: Sequence[Path],
        labels: Sequence[int] | None,
        resolution: int,
        crop: int | None = None,
        image_field: str = "x",
        label_field: str = "y",
    ):
        self.paths, self.labels, self.resolution, self.crop = list(paths), labels, resolution, crop
        self.image_field, self.label_field = image_field, label_field

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i) -> dict:
        item = {self.image_field: decode_image(self.paths[i], self.resolution, self.crop)}
        if self.labels is not None:
            item[self.label_field] = self.labels[i]
        return item


class _ResumableSampler(torch.utils.data.Sampler):
    """Seeded permutations per epoch, starting mid-epoch after a resume."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch, self.start = n, seed, 0, 0
        self.rows: tuple[int, int, int] | None = None  # under torchrun: (global batch, first row, rows)

    def _order(self) -> torch.Tensor:
        perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch))[self.start :]
        if self.rows is None:
            return perm
        batch, first, rows = self.rows  # this rank's slice of each whole global batch
        return perm[: len(perm) // batch * batch].view(-1, batch)[:, first : first + rows].reshape(-1)

    def __iter__(self):
        return iter(self._order().tolist())

    def __len__(self):  # what _order() yields, without drawing the permutation
        left = self.n - self.start
        if self.rows is None:
            return left
        batch, _, rows = self.rows
        return left // batch * rows


class FileStream(Stream):
    """Batches of one Dataset of dicts, decoded by DataLoader workers, pinned and copied asynchronously to
    the device; uint8 fields become float images there."""

    def __init__(
        self, files: torch.utils.data.Dataset, batch_size: int, device: torch.device, seed: int, num_workers: int
    ):
        if batch_size > len(files):
            raise GanError(f"trainer.batch_size={batch_size} is larger than the dataset ({len(files)} images).")
        self.files, self.batch_size, self.device, self.seed = files, batch_size, device, seed
        self.num_workers = num_workers
        self.sampler = _ResumableSampler(len(files), seed)
        self.consumed = 0  # samples consumed in this epoch
        self._it = None
        self.loader = self._make_loader()

    def _make_loader(self) -> torch.utils.data.DataLoader:
        first, rows = self.share()
        self.sampler.rows = (self.batch_size, first, rows) if self.world > 1 else None
        return torch.utils.data.DataLoader(
            self.files,
            batch_size=rows,
            sampler=self.sampler,
            drop_last=True,
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=self.num_workers > 0,  # workers live across epochs
            generator=torch.Generator().manual_seed(self.seed),
        )  # worker seeds must not draw from the global RNG

    def set_batch_size(self, batch_size: int) -> None:
        if int(batch_size) == self.batch_size:
            return
        if batch_size > len(self.files):
            raise GanError(f"a batch of {batch_size} is larger than the dataset ({len(self.files)} images).")
        rank_share(int(batch_size), self.world)
        self.batch_size = int(batch_size)
        self.loader, self._it = self._make_loader(), None  # continues from `consumed`

    def _start(self):
        self.sampler.start = self.consumed  # the sampler is read in this process at each new iterator
        self._it = iter(self.loader)

    def __next__(self) -> Batch:
        if self._it is None:
            self._start()
        try:
            try:
                batch = next(self._it)
            except StopIteration:
                self.sampler.epoch += 1
                self.consumed = 0
                self._start()
                batch = next(self._it)
        except GanError as exc:  # re-raised from a worker with the worker's traceback folded into the text
            raise GanError(str(exc).strip().splitlines()[-1].split("GanError: ", 1)[-1]) from None
        self.consumed += self.batch_size
        out = {}
        for k, v in batch.items():
            v = v.to(self.device, non_blocking=True)
            out[k] = to_float_image(v) if v.dtype == torch.uint8 else v
        return out

    def shard(self, rank: int, world: int) -> None:
        super().shard(rank, world)
        self.loader, self._it = self._make_loader(), None

    def state_dict(self):
        return {"epoch": self.sampler.epoch, "consumed": self.consumed, "batch_size": self.batch_size}

    def load_state_dict(self, state):
        self.sampler.epoch, self.consumed = int(state["epoch"]), int(state["consumed"])
        self.set_batch_size(int(state.get("batch_size", self.batch_size)))
        self._it = None


def _decode_all(files: torch.utils.data.Dataset, num_workers: int) -> dict[str, torch.Tensor]:
    loader = torch.utils.data.DataLoader(files, batch_size=256, num_workers=num_workers)
    parts = list(loader)
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]} if parts else {}


def file_source(
    spec: DataSpec,
    groups: Sequence[torch.utils.data.Dataset],
    description: str,
    nbytes: int,
    in_memory,
    max_memory_mb: int,
    num_workers: int = 2,
) -> DataSource:
    """A DataSource over Datasets of dicts, one per group of `spec`: decoded into memory once when
    `in_memory` is true (or "auto" and `nbytes` fits in max_memory_mb), else streamed from the files."""
    if in_memory is True or (in_memory == "auto" and nbytes <= max_memory_mb * 2**20):
        tensors = [_decode_all(g, num_workers) for g in groups]
        return in_memory_source(
            spec, tensors[0] if len(tensors) == 1 else tensors, f"{description}, decoded into memory"
        )

    def make_stream(batch_size, device, seed):
        streams = [FileStream(g, batch_size, device, group_seed(seed, i), num_workers) for i, g in enumerate(groups)]
        return streams[0] if len(streams) == 1 else IndependentStreams(streams)

    def reference(n):
        out: Batch = {}
        for i, g in enumerate(groups):
            items = [g[j] for j in reference_indices(len(g), n, i).tolist()]
            out.update({k: as_model_input(torch.stack([torch.as_tensor(it[k]) for it in items])) for k in items[0]})
        return out

    return DataSource(spec, make_stream, reference, f"{description}, streamed")


def read_images(
    path: Path, channels: int, resolution: int, command: str
) -> tuple[torch.Tensor, list[str], torch.Tensor | None]:
    """What `gan translate` / `gan encode` / `reconstruct=` read: an image, a folder of images, or an npz with
    `images` (N, H, W, C) uint8 (as `gan sample format=npz` writes) and optionally `labels` (N,). Returns uint8
    (N, C, R, R), a name per image, and the labels (or None). Every image is read before anything is used."""
    import logging

    import numpy as np

    mode = "L" if channels == 1 else "RGB"
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
        if not files:
            raise GanError(f"input={path} holds no images ({', '.join(sorted(IMAGE_EXTS))}).")
        return torch.stack([decode_image(p, resolution, mode=mode) for p in files]), [p.stem for p in files], None
    if path.suffix.lower() in IMAGE_EXTS:
        return decode_image(path, resolution, mode=mode).unsqueeze(0), [path.stem], None
    if path.suffix.lower() == ".npz":
        data = np.load(path, allow_pickle=False)
        if "images" not in data.files:
            raise GanError(f"input={path} holds {', '.join(data.files)}; {command} reads `images` (N, H, W, C).")
        arr = data["images"]
        if arr.ndim != 4 or arr.dtype != np.uint8 or arr.shape[-1] != channels:
            raise GanError(
                f"input={path}: images of shape {arr.shape} and type {arr.dtype}; this model reads "
                f"(N, H, W, {channels}) uint8 images (its input has {channels} channel(s))."
            )
        x = torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()
        if x.shape[-1] != resolution or x.shape[-2] != resolution:
            logging.getLogger("gancli").warning(
                "input images are %dx%d; resized to the model's %d px", x.shape[-1], x.shape[-2], resolution
            )
            x = (
                torch.nn.functional.interpolate(
                    x.float(), size=(resolution, resolution), mode="bilinear", antialias=True
                )
                .round()
                .clamp(0, 255)
                .to(torch.uint8)
            )
        labels = None
        if "labels" in data.files:
            labels = torch.from_numpy(np.asarray(data["labels"])).long().flatten()
            if len(labels) != len(x):
                raise GanError(f"input={path}: {len(labels)} labels for {len(x)} images.")
        return x, [f"{i:06d}" for i in range(len(x))], labels
    if not path.exists():
        raise GanError(f"input={path} does not exist (an image, a folder of images, or an npz).")
    raise GanError(f"input={path}: {command} reads an image file, a folder of images or an npz.")
