"""Scalars to metrics.jsonl (always) and TensorBoard (when installed), resumable without duplicates; the window
of steps a log line averages."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch

from gancli.core.scalars import accumulate

log = logging.getLogger("gancli")


class MetricsLog:
    def __init__(self, run_dir: Path, tensorboard="auto", resume_step: int | None = None):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.exists():  # drop lines logged after the checkpoint we resume
            self._keep_until(resume_step)
        self._f = open(self.path, "a", buffering=1)
        self.tb = None
        if str(tensorboard).lower() in ("auto", "true"):
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(Path(run_dir) / "tb"), purge_step=resume_step)
            except ImportError:
                if str(tensorboard).lower() == "true":
                    log.warning("trainer.tensorboard=true but tensorboard is not installed (pip install tensorboard)")

    def _keep_until(self, step: int) -> None:
        kept = []
        for ln in self.path.read_text().splitlines():
            try:
                if ln.strip() and json.loads(ln).get("step", 0) <= step:
                    kept.append(ln)
            except json.JSONDecodeError:  # a line cut by a crash
                continue
        self.path.write_text("".join(ln + "\n" for ln in kept))

    def rewind(self, step: int) -> None:
        """Forget what was logged after `step` (a run restored to an earlier checkpoint)."""
        self._f.close()
        self._keep_until(step)
        self._f = open(self.path, "a", buffering=1)

    def write(self, step: int, scalars: dict[str, float]) -> None:
        self._f.write(json.dumps({"step": step, **scalars}) + "\n")
        if self.tb is not None:
            for k, v in scalars.items():
                self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        self._f.close()
        if self.tb is not None:
            self.tb.close()


class NullMetricsLog:
    """What ranks other than 0 log to under torchrun: nothing."""

    def rewind(self, step: int) -> None:
        pass

    def write(self, step: int, scalars: dict[str, float]) -> None:
        pass

    def close(self) -> None:
        pass


class LogWindow:
    """The logged scalars of the steps since the last log line, summed on the device: reading them is the one
    host sync of a window (hot path: no sync per step)."""

    def __init__(self, world):
        self.world = world
        self.images_read = 0  # images of every window read so far: the run's img/s
        self.acc: dict[str, torch.Tensor] = {}
        self.steps, self.images, self.t = 0, 0, time.perf_counter()

    def add(self, logs: dict[str, torch.Tensor], images: int) -> None:
        accumulate(self.acc, logs)
        self.steps += 1
        self.images += images

    def read(self) -> dict[str, float]:
        """Each scalar's mean over the window (and over ranks), and img_per_s; a new window starts."""
        now, keys = time.perf_counter(), list(self.acc)
        values = (
            self.world.mean_(torch.stack([self.acc[k].float() for k in keys]).div_(self.steps)).tolist() if keys else []
        )
        scalars = dict(zip(keys, values))
        scalars["img_per_s"] = self.images / max(now - self.t, 1e-9)
        self.images_read += self.images
        self.acc, self.steps, self.images, self.t = {}, 0, 0, now
        return scalars

    def sums(self) -> dict[str, float]:
        """The sums so far (one host sync), unaveraged: enough to tell whether they are finite."""
        keys = list(self.acc)
        return dict(zip(keys, self.world.mean_(torch.stack([self.acc[k].float() for k in keys])).tolist()))

    def drop(self) -> None:
        """Forget the steps since the last read: the run went back to an earlier checkpoint."""
        self.acc, self.steps, self.images = {}, 0, 0
