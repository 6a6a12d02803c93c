"""Files written so that a crash never leaves a torn one: checkpoints, and anything cached."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from gancli.core.errors import GanError


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_atomic(obj: dict, path: Path) -> None:
    """torch.save to a temp file in the same folder, fsync, then rename over `path`.

    A crash at any point leaves either the old file or the new one, never a torn one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except (OSError, RuntimeError) as exc:
        tmp.unlink(missing_ok=True)
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        raise GanError(
            f"could not write checkpoint {path}: {reason}. Checkpoints written before are intact; "
            f"free some disk space and resume the run."
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
