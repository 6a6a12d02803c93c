"""Named-field data. A `DataSpec` lists a dataset's fields (name → kind, shape, classes) and which of them
share one order; a `DataSource` serves resumable streams of dict batches of those fields.

Fields of one group stay together (an image and its label; pix2pix's A and B); groups are shuffled
independently, each with its own resumable position (CycleGAN's two domains). Small datasets live in
memory — on the GPU when training there — and a batch is an index into them: no decoding, no host round
trip per step. Large ones stream through a DataLoader. Every stream checkpoints its position, so a
resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from gancli.core.errors import GanError
from gancli.core.registry import Registry
from gancli.core.rules import COUNT, POSITIVE, number, one_of

Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Field:
    """One named part of a sample. `kind` decides how it is drawn (image grid, point scatter, line plot)
    and which networks apply; labels are fields of kind "label" with their class count and names."""

    kind: str  # "image" | "points" | "sequence" | "label" | "vector" | ...
    shape: tuple[int, ...]  # per sample: (C, H, W), (2,), (T, C); () for a label
    num_classes: int = 0  # labels: how many classes
    class_names: tuple[str, ...] = ()
    extras: dict = field(default_factory=dict, compare=False)  # e.g. mode centres and σ of toy data

    @property
    def resolution(self) -> int | None:
        return self.shape[-1] if self.kind == "image" else None

    def describe(self) -> str:
        if self.kind == "label":
            return f"label ({self.num_classes} classes)"
        return f"{self.kind} {tuple(self.shape)}"

    def to_plain(self) -> dict:
        return {
            "kind": self.kind,
            "shape": list(self.shape),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "extras": self.extras,
        }

    @classmethod
    def from_plain(cls, d: dict) -> Field:
        return cls(
            d["kind"],
            tuple(d["shape"]),
            d.get("num_classes", 0),
            tuple(d.get("class_names", ())),
            dict(d.get("extras", {})),
        )


@dataclass(frozen=True)
class DataSpec:
    """What a dataset's samples are: its named fields, and `groups`, the fields that share one order
    (default: all of them, i.e. paired)."""

    fields: dict[str, Field]
    groups: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self):
        if not self.groups:
            object.__setattr__(self, "groups", (tuple(self.fields),))
        grouped = [name for g in self.groups for name in g]
        if sorted(grouped) != sorted(self.fields):
            raise ValueError(f"groups {self.groups} must list each field of {list(self.fields)} exactly once")

    def __getitem__(self, name: str) -> Field:
        try:
            return self.fields[name]
        except KeyError:
            raise GanError(f"this dataset has no field '{name}'; its fields are {self.describe()}.") from None

    def __contains__(self, name: str) -> bool:
        return name in self.fields

    def describe(self) -> str:
        return ", ".join(f"{k}: {f.describe()}" for k, f in self.fields.items())

    def to_plain(self) -> dict:
        return {"fields": {k: f.to_plain() for k, f in self.fields.items()}, "groups": [list(g) for g in self.groups]}

    @classmethod
    def from_plain(cls, d: dict) -> DataSpec:
        if "fields" not in d:  # checkpoint format 2: one sample kind as "x", labels as "y"
            fields = {"x": Field(d["kind"], tuple(d["shape"]), extras=dict(d.get("extras", {})))}
            if d.get("num_classes"):
                fields["y"] = Field("label", (), d["num_classes"], tuple(d.get("class_names", ())))
            return cls(fields)
        return cls({k: Field.from_plain(f) for k, f in d["fields"].items()}, tuple(tuple(g) for g in d["groups"]))


def labelled(sample: Field, num_classes: int = 0, class_names: Sequence[str] = (), name: str = "x") -> DataSpec:
    """The usual spec: one sample field `x`, plus a label field `y` when there are classes."""
    fields = {name: sample}
    if num_classes:
        fields["y"] = Field("label", (), num_classes, tuple(class_names))
    return DataSpec(fields)


def rank_share(batch: int, world_size: int, key: str = "trainer.batch_size") -> int:
    """Each process's share of a global batch under torchrun; the world size must divide it."""
    if batch % world_size:
        lower, upper = batch - batch % world_size, batch + world_size - batch % world_size
        raise GanError(
            f"{key}={batch} is the global batch, shared by {world_size} processes, and {world_size} does "
            f"not divide it: use {key}={lower or upper} or {upper}, or another --nproc_per_node."
        )
    return batch // world_size


class Stream:
    """An endless, resumable iterator of dict batches; the batch size may change between batches.

    `batch_size` is the global batch. Under torchrun every rank holds the same stream (same order, same
    position) and `shard(rank, world)` makes it yield only that rank's slice of each global batch."""

    batch_size: int
    rank, world = 0, 1

    def shard(self, rank: int, world: int) -> None:
        rank_share(self.batch_size, world)
        self.rank, self.world = int(rank), int(world)

    def share(self) -> tuple[int, int]:
        """(start, size) of this rank's rows in a global batch."""
        size = rank_share(self.batch_size, self.world)
        return self.rank * size, size

    def __next__(self) -> Batch:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Batch]:
        return self

    def set_batch_size(self, batch_size: int) -> None:
        self.batch_size = int(batch_size)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def to_float_image(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] → float [-1, 1]; images are stored as uint8 (4× less memory)."""
    return x.float().div_(127.5).sub_(1.0)


def _check_fits(batch_size: int, n: int) -> None:
    if batch_size > n:
        raise GanError(f"trainer.batch_size={batch_size} is larger than the dataset ({n} samples).")


class TensorStream(Stream):
    """Epochs of random permutations over tensors that already sit on the training device; every tensor
    is indexed by the same permutation, so the fields of one sample stay together."""

    def __init__(
        self, tensors: dict[str, torch.Tensor], batch_size: int, seed: int, transform: dict[str, Callable] | None = None
    ):
        n = len(next(iter(tensors.values())))
        _check_fits(batch_size, n)
        self.tensors, self.batch_size, self.n = tensors, batch_size, n
        self.transform = transform or {}
        self.device = next(iter(tensors.values())).device
        self.gen = torch.Generator(device="cpu").manual_seed(seed)
        self.perm: torch.Tensor | None = None
        self.pos = 0

    def set_batch_size(self, batch_size: int) -> None:
        _check_fits(batch_size, self.n)
        rank_share(int(batch_size), self.world)
        self.batch_size = int(batch_size)

    def _new_epoch(self) -> None:
        self.perm = torch.randperm(self.n, generator=self.gen).to(self.device, non_blocking=True)
        self.pos = 0

    def __next__(self) -> Batch:
        if self.perm is None or self.pos + self.batch_size > self.n:  # drop the ragged tail: static shapes
            self._new_epoch()
        start, size = self.share()
        idx = self.perm[self.pos + start : self.pos + start + size]
        self.pos += self.batch_size
        out = {}
        for k, t in self.tensors.items():
            v = t.index_select(0, idx)
            out[k] = self.transform[k](v) if k in self.transform else v
        return out

    def state_dict(self) -> dict:
        return {
            "gen": self.gen.get_state(),
            "perm": None if self.perm is None else self.perm.cpu(),
            "pos": self.pos,
            "batch_size": self.batch_size,
        }

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["gen"])
        self.perm = None if state["perm"] is None else state["perm"].to(self.device)
        self.pos = int(state["pos"])
        self.set_batch_size(int(state.get("batch_size", self.batch_size)))


class IndependentStreams(Stream):
    """Several groups of fields in independent orders (two unpaired domains), merged into one batch."""

    def __init__(self, streams: Sequence[Stream]):
        self.streams = list(streams)
        self.batch_size = self.streams[0].batch_size

    def set_batch_size(self, batch_size: int) -> None:
        for s in self.streams:
            s.set_batch_size(batch_size)
        self.batch_size = int(batch_size)

    def shard(self, rank: int, world: int) -> None:
        super().shard(rank, world)
        for s in self.streams:
            s.shard(rank, world)

    def __next__(self) -> Batch:
        out: Batch = {}
        for s in self.streams:
            out.update(next(s))
        return out

    def state_dict(self) -> dict:
        return {"streams": [s.state_dict() for s in self.streams]}

    def load_state_dict(self, state: dict) -> None:
        for s, st in zip(self.streams, state["streams"], strict=True):
            s.load_state_dict(st)
        self.batch_size = self.streams[0].batch_size


def group_seed(seed: int, group: int) -> int:
    """Each group's own order: group 0 keeps the run's seed (paired data shuffles as it always has)."""
    return seed if group == 0 else seed + 1_000_003 * group


def reference_indices(n_samples: int, n: int, group: int = 0) -> torch.Tensor:
    """A fixed spread of n sample indices (all when n ≥ the dataset), in dataset order: the same real
    samples at every grid, after a resume and on any machine."""
    perm = torch.randperm(n_samples, generator=torch.Generator().manual_seed(group))
    return perm[:n].sort().values


class DataSource:
    """A dataset ready for training: its spec, a batch stream factory and a few real samples for panels."""

    def __init__(
        self,
        spec: DataSpec,
        make_stream: Callable[[int, torch.device, int], Stream],
        reference: Callable[[int], Batch],
        description: str,
    ):
        self.spec = spec
        self._make_stream = make_stream
        self._reference = reference
        self.description = description

    def stream(self, batch_size: int, device: torch.device, seed: int) -> Stream:
        return self._make_stream(batch_size, device, seed)

    def reference(self, n: int) -> Batch:
        """A fixed batch of (at most) n real samples per group, on the CPU: floats in the model's range for
        images and points, labels as they are."""
        return self._reference(n) if n > 0 else {}


def as_model_input(t: torch.Tensor) -> torch.Tensor:
    """Stored values → what networks see: uint8 images to [-1, 1]; other floats as float32; labels as they are."""
    if t.dtype == torch.uint8:
        return to_float_image(t)
    return t.float() if t.is_floating_point() else t


def in_memory_source(
    spec: DataSpec, tensors: Mapping[str, torch.Tensor] | Sequence[Mapping[str, torch.Tensor]], description: str
) -> DataSource:
    """A DataSource over tensors held in memory: one dict of same-length tensors per group of `spec`
    (a single dict for paired data). Each group moves to the training device once."""
    groups = [dict(tensors)] if isinstance(tensors, Mapping) else [dict(g) for g in tensors]
    if [sorted(g) for g in groups] != [sorted(g) for g in spec.groups]:
        raise ValueError(f"tensors {[sorted(g) for g in groups]} do not match the spec's groups {spec.groups}")
    for g in groups:
        lengths = {k: len(t) for k, t in g.items()}
        if len(set(lengths.values())) > 1:
            raise GanError(f"the fields of one group must have one sample each; got {lengths}.")
    on_device: dict[str, list[dict[str, torch.Tensor]]] = {}

    def device_groups(device: torch.device) -> list[dict[str, torch.Tensor]]:
        key = str(device)
        if key not in on_device:  # one copy, once: pinning it first would only double host memory
            on_device[key] = [{k: t.to(device) for k, t in g.items()} for g in groups]
        return on_device[key]

    def make_stream(batch_size: int, device: torch.device, seed: int) -> Stream:
        streams = [
            TensorStream(
                g, batch_size, group_seed(seed, i), {k: to_float_image for k, t in g.items() if t.dtype == torch.uint8}
            )
            for i, g in enumerate(device_groups(device))
        ]
        return streams[0] if len(streams) == 1 else IndependentStreams(streams)

    def reference(n: int) -> Batch:
        out: Batch = {}
        for i, g in enumerate(groups):
            idx = reference_indices(len(next(iter(g.values()))), n, i)
            out.update({k: as_model_input(t.index_select(0, idx)) for k, t in g.items()})
        return out

    return DataSource(spec, make_stream, reference, description)


DATASETS: Registry[Callable[..., DataSource]] = Registry("dataset")


def split_reference(dataset_cfg, n: int, split: str) -> Batch:
    """n samples (or n of each group) of the dataset's `split` (train | test), as the model's inputs: a
    procedural dataset has no test split, so a fresh draw (another seed) stands for it. A `subset` picks
    samples of the configured split (a run trained on part of it): another split is read whole."""
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(dataset_cfg, resolve=True)
    if split not in ("train", "test"):
        raise GanError(f"split={split} is not one of: train, test.")
    if "split" in data:
        if data.get("subset") is not None and data["split"] != split:
            data["subset"] = None
        data["split"] = split
    elif split != "train" and "seed" in data and "n" in data:
        data["seed"] = int(data["seed"]) + 1_000_003
    return build_dataset(OmegaConf.create(data)).reference(n)


def _resolution(v) -> bool:
    return v is None or isinstance(v, int) and not isinstance(v, bool) and 8 <= v <= 1024


# The rules of the parameters datasets share, by name; a builder's own `config_rules` (set with
# `with_rules`) adds to them or replaces one (points take no resolution).
DATASET_RULES = {
    "n": COUNT,
    "std": POSITIVE,
    "rotation": number(0, 180),
    "max_memory_mb": COUNT,
    "split": one_of("train", "test", "all", "valid"),
    "steps": COUNT,
    "batch_size": COUNT,
    "net_width": COUNT,
    "resolution": ("a supported size: an integer from 8 to 1024 (28, 32, 64, 128, ...)", _resolution),
}
IGNORED = ("anything (not used by this dataset)", lambda v: True)


def with_rules(**config_rules) -> Callable:
    """A dataset builder's own rules, beside DATASET_RULES: `@with_rules(resolution=IGNORED)`."""

    def deco(builder: Callable) -> Callable:
        builder.config_rules = config_rules
        return builder

    return deco


def dataset_rules(name: str) -> dict:
    """{key under dataset.: rule} for the dataset `name`."""
    return {**DATASET_RULES, **getattr(DATASETS.get(name), "config_rules", {})}


def dataset_checks(cfg: dict) -> list[str]:
    """Cross-key rules between the dataset and the loop."""
    n, batch = cfg.get("dataset", {}).get("n"), cfg.get("trainer", {}).get("batch_size")
    if isinstance(n, int) and isinstance(batch, int) and batch > n:
        return [f"trainer.batch_size={batch} is larger than the dataset (dataset.n={n} samples)."]
    return []


def build_dataset(cfg, **runtime) -> DataSource:
    """cfg: the `dataset` config node. The builder receives its keys as keyword arguments, plus the
    runtime settings it declares (e.g. num_workers for file-backed sets)."""
    from omegaconf import OmegaConf

    params = OmegaConf.to_container(cfg, resolve=True)
    name = params.pop("name")
    for key in ("steps", "batch_size", "net_width", "networks"):  # suggestions and pinned nets, not data parameters
        params.pop(key, None)
    builder = DATASETS.get(name)
    accepted = inspect.signature(builder).parameters
    params.update({k: v for k, v in runtime.items() if k in accepted})
    try:
        return builder(**params)
    except TypeError as exc:
        raise GanError(f"dataset '{name}': {exc}") from None
