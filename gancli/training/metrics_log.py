"""Scalars to metrics.jsonl (always) and TensorBoard (when installed), resumable without duplicates."""

from __future__ import annotations

import json
import logging
from pathlib import Path

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
            except json.JSONDecodeError:   # a line cut by a crash
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
