"""Real data for evaluation: a dataset's training and test parts, and the cache of what is computed from
them once (a classifier, reference features).

The reference is the data a model learned to imitate: the training split as configured, without a
`subset` (a model trained on 8k MNIST digits is still scored against MNIST). The test part is the test
part of the authors' 60/20/20 split for a model trained on one of its parts (`dataset.part` of the
image-sequence datasets, which also gives a validation part), else the dataset's test split where it has
one, a fresh draw of the same distribution for procedural sets (another seed), and otherwise a held-out
tenth of the training part; real test vs reference is the floor a metric can reach. A validation part, to
choose a checkpoint on without touching the test part, is the authors' validation part where the data has
one, and for procedural sets a third draw (a third seed).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from gancli.core.errors import GanError
from gancli.core.files import save_atomic
from gancli.data.base import Field, build_dataset, reference_indices

RUN_KEYS = ("steps", "batch_size", "net_width", "networks", "subset")  # not part of the data
NOT_CONTENT = ("download", "root", "in_memory", "max_memory_mb", "num_workers")  # where, not what
TEST_SEED_OFFSET = 1_000_003
VALI_SEED_OFFSET = 2_000_003


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Model-range images ([-1, 1]) → uint8, as an image file would hold them."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


@dataclass
class RealPart:
    name: str  # where it comes from, as a phrase: "the test split", ...
    samples: torch.Tensor  # images as uint8 (N, C, H, W); points as float (N, 2)
    labels: torch.Tensor | None
    field: Field | None = None  # what a sample is (kind, shape, extras such as a mixture's centres)


def plain(node) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)


def load_part(cfg: dict, n: int, name: str) -> RealPart:
    """Up to n samples of a dataset config (a fixed spread, in dataset order) with their labels."""
    from omegaconf import OmegaConf

    source = build_dataset(OmegaConf.create(cfg))
    if "x" not in source.spec:
        raise GanError(
            f"dataset '{cfg['name']}' has no sample field 'x' ({source.spec.describe()}); the image and "
            "point metrics score one."
        )
    batch = source.reference(n)
    x = batch["x"]
    field_ = source.spec["x"]
    if field_.kind == "image":
        x = to_uint8(x)
    elif field_.kind == "sequence":  # in the data's own units, as the models' samples are
        from gancli.data.sequences import unscale

        x = unscale(x.float(), field_)
    return RealPart(name, x.float() if x.dtype != torch.uint8 else x, batch.get("y"), field_)


class RealData:
    """The training part and the test part of a dataset config (at most n samples each), loaded on first use."""

    def __init__(self, dataset_cfg, n: int):
        self.cfg = {k: v for k, v in plain(dataset_cfg).items() if k not in RUN_KEYS}
        if self.cfg.get("split") == "all":
            self.cfg["split"] = "train"
        self.n = int(n)
        self._train: RealPart | None = None
        self._test: RealPart | None = None
        self._vali: RealPart | None = None

    def _test_config(self) -> tuple[dict, str] | None:
        if self.cfg.get("part", "all") != "all":  # trained on a part of the authors' 60/20/20 split
            return {**self.cfg, "part": "test"}, "the test part (dataset.part=test)"
        if "split" in self.cfg:
            return {**self.cfg, "split": "test"}, "the test split"
        if "seed" in self.cfg and "n" in self.cfg:  # procedural: another draw of the same distribution
            return {**self.cfg, "seed": int(self.cfg["seed"]) + TEST_SEED_OFFSET}, "a fresh draw (another seed)"
        return None

    @property
    def train(self) -> RealPart:
        if self._train is None:
            part = load_part(self.cfg, self.n, "the training data")
            if self._test_config() is None:  # no test part of its own: hold out a tenth
                x, y = part.samples, part.labels
                held = torch.zeros(len(x), dtype=torch.bool)
                held[reference_indices(len(x), max(1, len(x) // 10), group=7)] = True
                self._test = RealPart(
                    "a held-out tenth of the training data", x[held], None if y is None else y[held], part.field
                )
                part = RealPart("the training data less a tenth", x[~held], None if y is None else y[~held], part.field)
            self._train = part
        return self._train

    @property
    def test(self) -> RealPart:
        if self._test is None:
            found = self._test_config()
            if found is None:
                _ = self.train  # splits the training part
            else:
                self._test = load_part(found[0], self.n, found[1])
        return self._test

    @property
    def vali(self) -> RealPart | None:
        """What a checkpoint is chosen on: the validation part of a dataset trained on a part of the authors'
        60/20/20 split (`dataset.part`, their TSTR protocol), a third draw of a procedural set (the RGAN
        authors pick sines checkpoints on a validation part too); None for other data."""
        if self._vali is None:
            if self.cfg.get("part", "all") != "all":
                self._vali = load_part({**self.cfg, "part": "vali"}, self.n, "the validation part (dataset.part=vali)")
            elif "split" not in self.cfg and "seed" in self.cfg and "n" in self.cfg:
                cfg = {**self.cfg, "seed": int(self.cfg["seed"]) + VALI_SEED_OFFSET}
                self._vali = load_part(cfg, self.n, "a validation draw (a third seed)")
        return self._vali

    def key(self) -> str:
        """What identifies this data: its config (minus paths and run settings) and a fingerprint of its
        content, so a changed dataset, even under the same config, gets a new key."""
        train = self.train
        digest = hashlib.sha1(
            json.dumps(
                {k: v for k, v in self.cfg.items() if k not in NOT_CONTENT}, sort_keys=True, default=str
            ).encode()
        )
        digest.update(str((tuple(train.samples.shape), str(train.samples.dtype), self.n)).encode())
        for t in (train.samples[:64], train.samples[-64:], train.labels):
            if t is not None:
                digest.update(t.contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]


class Cache:
    """Files computed once from real data (classifiers, reference features), under `eval.cache_dir`,
    named by what they are and the key of the data (and settings) they come from."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder).expanduser()

    def path(self, kind: str, key: str) -> Path:
        return self.folder / f"{kind}-{key}.pt"

    def load(self, kind: str, key: str) -> dict | None:
        path = self.path(kind, key)
        if not path.is_file():
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # torn or foreign: recompute it
            return None

    def save(self, kind: str, key: str, obj: dict) -> None:
        try:
            save_atomic(obj, self.path(kind, key))
        except GanError as exc:  # a read-only cache costs time, not the evaluation
            import logging

            logging.getLogger("gancli").warning(
                "could not cache %s (%s); it will be computed again next time", kind, exc
            )
