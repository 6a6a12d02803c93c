"""Scalars to metrics.jsonl (always: other commands read it) and to the run's loggers (the `logger` config
group: TensorBoard, CSV, MLflow, W&B; training/loggers/), resumable without duplicates; the window of steps a
log line averages."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from pathlib import Path

import torch

from gancli.core.errors import GanError
from gancli.core.scalars import accumulate
from gancli.training.loggers.base import Logger

log = logging.getLogger("gancli")


class MetricsLog:
    """The one place a run's scalars are written: metrics.jsonl, then each logger. A logger that fails to
    start stops the run before its first step; one that fails later is reported (the log, the summary's
    logger_errors), dropped, and training goes on: metrics.jsonl still has everything."""

    def __init__(
        self,
        run_dir: Path,
        loggers: Iterable[Logger] = (),
        resume_step: int | None = None,
        config: dict | None = None,
    ):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.exists():  # drop lines logged after the checkpoint we resume
            self._keep_until(resume_step)
        self._f = open(self.path, "a", buffering=1)
        self.loggers: list[Logger] = []
        self.errors: list[str] = []
        for logger in loggers:
            try:
                logger.start(Path(run_dir), config or {}, resume_step)
            except Exception as exc:
                self.close("failed")
                if isinstance(exc, GanError):
                    raise
                raise GanError(
                    f"logger={logger.name} could not start: {type(exc).__name__}: {exc}. Training has not "
                    f"started; fix its settings (logger.{logger.name}.*) or choose another logger (logger=none)."
                ) from exc
            self.loggers.append(logger)

    def _keep_until(self, step: int) -> None:
        kept = []
        for ln in self.path.read_text().splitlines():
            try:
                if ln.strip() and json.loads(ln).get("step", 0) <= step:
                    kept.append(ln)
            except json.JSONDecodeError:  # a line cut by a crash
                continue
        self.path.write_text("".join(ln + "\n" for ln in kept))

    def _each(self, hook: str, step: int, *args) -> None:
        """Call `hook` on every logger; one that raises is reported and dropped."""
        for logger in list(self.loggers):
            try:
                getattr(logger, hook)(*args)
            except Exception as exc:  # a backend's hiccup (a server gone, a full disk) must not end training
                message = f"logger '{logger.name}' failed at step {step} ({hook}): {type(exc).__name__}: {exc}"
                log.error("%s; it is switched off, metrics.jsonl goes on", message)
                self.errors.append(message)
                self.loggers.remove(logger)
                try:
                    logger.close("failed")
                except Exception:
                    pass

    def rewind(self, step: int) -> None:
        """Forget what was logged after `step` (a run restored to an earlier checkpoint)."""
        self._f.close()
        self._keep_until(step)
        self._f = open(self.path, "a", buffering=1)
        self._each("rewind", step, step)

    def write(self, step: int, scalars: dict[str, float]) -> None:
        self._f.write(json.dumps({"step": step, **scalars}) + "\n")
        self._each("log", step, step, scalars)

    def finish(self, summary: dict) -> None:
        """The loggers' final outputs (the final grid, config.yaml) of a run that ended normally."""
        self._each("finish", int(summary["step"]), summary)

    def close(self, status: str = "finished") -> None:
        if not self._f.closed:
            self._f.close()
        for logger in self.loggers:
            try:
                logger.close(status)
            except Exception as exc:
                log.error("logger '%s' failed to close: %s: %s", logger.name, type(exc).__name__, exc)
        self.loggers = []


class NullMetricsLog:
    """What ranks other than 0 log to under torchrun: nothing."""

    errors = ()

    def rewind(self, step: int) -> None:
        pass

    def write(self, step: int, scalars: dict[str, float]) -> None:
        pass

    def finish(self, summary: dict) -> None:
        pass

    def close(self, status: str = "finished") -> None:
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
