"""One live run per run dir: an advisory lock (flock) on <run dir>/.lock, held while the run trains. The
kernel drops it when the process ends in any way, kill -9 included, so a crashed run never leaves it stuck."""

from __future__ import annotations

import os
from pathlib import Path

from gancli.core.errors import GanError

try:
    import fcntl
except ImportError:  # not on Windows: no lock there
    fcntl = None


class RunLock:
    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"
        self._f = None

    def acquire(self) -> RunLock:
        if fcntl is None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            f.close()
            raise GanError(
                f"run dir {self.path.parent} is in use by another live run (process {holder}). Wait for it "
                "to finish, stop it, or train into another hydra.run.dir."
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._f = f
        return self

    def release(self) -> None:
        if self._f is not None:
            self._f.close()  # closing drops the flock
            self._f = None
