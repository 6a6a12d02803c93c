"""DataSpec (what the networks must produce), DataSource (a resumable stream of dict batches).

Small datasets live in memory as one tensor — on the GPU when training there — and a batch is an
index into it: no decoding, no host round trip per step. Large ones stream through a DataLoader.
Both streams checkpoint their position, so a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch

from gancli.errors import GanError
from gancli.registry import Registry


@dataclass(frozen=True)
class DataSpec:
    """What a sample is. `kind` decides how samples are drawn (image grid, point scatter, ...)."""

    kind: str                      # "image" | "points" (later: "sequence")
    shape: tuple[int, ...]         # per-sample shape: (C, H, W) or (2,)
    num_classes: int = 0           # 0 = unlabelled
    class_names: tuple[str, ...] = ()
    extras: dict = field(default_factory=dict, compare=False)  # e.g. mode centres and σ of toy data

    @property
    def resolution(self) -> int | None:
        return self.shape[-1] if self.kind == "image" else None

    def to_plain(self) -> dict:
        return {"kind": self.kind, "shape": list(self.shape), "num_classes": self.num_classes,
                "class_names": list(self.class_names), "extras": self.extras}

    @classmethod
    def from_plain(cls, d: dict) -> "DataSpec":
        return cls(d["kind"], tuple(d["shape"]), d.get("num_classes", 0), tuple(d.get("class_names", ())),
                   dict(d.get("extras", {})))


class Stream:
    """An endless, resumable iterator of dict batches."""

    def __next__(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def to_float_image(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] → float [-1, 1]; images are stored as uint8 (4× less memory)."""
    return x.float().div_(127.5).sub_(1.0)


class TensorStream(Stream):
    """Epochs of random permutations over tensors that already sit on the training device."""

    def __init__(self, tensors: dict[str, torch.Tensor], batch_size: int, seed: int,
                 transform: dict[str, Callable] | None = None):
        n = len(next(iter(tensors.values())))
        if batch_size > n:
            raise GanError(f"trainer.batch_size={batch_size} is larger than the dataset ({n} samples).")
        self.tensors, self.batch_size, self.n = tensors, batch_size, n
        self.transform = transform or {}
        self.device = next(iter(tensors.values())).device
        self.gen = torch.Generator(device="cpu").manual_seed(seed)
        self.perm: torch.Tensor | None = None
        self.pos = 0

    def _new_epoch(self) -> None:
        self.perm = torch.randperm(self.n, generator=self.gen).to(self.device, non_blocking=True)
        self.pos = 0

    def __next__(self) -> dict[str, torch.Tensor]:
        if self.perm is None or self.pos + self.batch_size > self.n:  # drop the ragged tail: static shapes
            self._new_epoch()
        idx = self.perm[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        out = {}
        for k, t in self.tensors.items():
            v = t.index_select(0, idx)
            out[k] = self.transform[k](v) if k in self.transform else v
        return out

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state(), "perm": None if self.perm is None else self.perm.cpu(), "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["gen"])
        self.perm = None if state["perm"] is None else state["perm"].to(self.device)
        self.pos = int(state["pos"])


class DataSource:
    """A dataset ready for training: its spec, a batch stream factory and a few real samples for plots."""

    def __init__(self, spec: DataSpec, make_stream: Callable[[int, torch.device, int], Stream],
                 reference: Callable[[int], torch.Tensor], description: str):
        self.spec = spec
        self._make_stream = make_stream
        self._reference = reference
        self.description = description

    def stream(self, batch_size: int, device: torch.device, seed: int) -> Stream:
        return self._make_stream(batch_size, device, seed)

    def reference(self, n: int) -> torch.Tensor:
        """n real samples (float, model range) for drawing beside the fakes."""
        return self._reference(n)


def in_memory_source(spec: DataSpec, x: torch.Tensor, y: torch.Tensor | None, description: str) -> DataSource:
    """A DataSource over tensors held in memory (moved to the training device once)."""
    is_image = x.dtype == torch.uint8

    def make_stream(batch_size: int, device: torch.device, seed: int) -> Stream:
        tensors = {"x": x.to(device)}  # one copy, once: pinning it first would only double host memory
        if y is not None:
            tensors["y"] = y.to(device)
        return TensorStream(tensors, batch_size, seed, {"x": to_float_image} if is_image else None)

    def reference(n: int) -> torch.Tensor:
        ref = x[:n]
        return to_float_image(ref) if is_image else ref.float()

    return DataSource(spec, make_stream, reference, description)


DATASETS: Registry[Callable[..., DataSource]] = Registry("dataset")


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
