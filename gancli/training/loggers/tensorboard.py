"""logger=tensorboard (the default): the scalars under <run dir>/tb, when TensorBoard is installed
(pip install 'gancli[tensorboard]'); without it the run logs to metrics.jsonl alone, as it says once."""

from __future__ import annotations

import logging
from pathlib import Path

from gancli.training.loggers.base import Logger, register

log = logging.getLogger("gancli")


@register
class TensorBoardLogger(Logger):
    name = "tensorboard"

    def __init__(self):
        self.writer = None
        self.folder: Path | None = None

    def start(self, run_dir: Path, config: dict, resume_step: int | None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401
        except ImportError:
            log.info(
                "logger=tensorboard: TensorBoard is not installed, so scalars go to metrics.jsonl only "
                "(pip install 'gancli[tensorboard]'; logger=none says so explicitly)"
            )
            return
        self.folder = Path(run_dir) / "tb"
        self._open(resume_step)

    def _open(self, last_step: int | None) -> None:
        """A writer that hides from TensorBoard what an earlier process logged after `last_step`."""
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.folder), purge_step=None if last_step is None else last_step + 1)

    def log(self, step: int, scalars: dict[str, float]) -> None:
        if self.writer is not None:
            for k, v in scalars.items():
                self.writer.add_scalar(k, v, step)

    def rewind(self, step: int) -> None:
        if self.writer is not None:
            self.writer.close()
            self._open(step)

    def close(self, status: str) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
