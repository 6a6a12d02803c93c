"""Checkpoints: written atomically, loaded without running code.

A checkpoint is plain data: state dicts keyed by network name, optimizer states, the algorithm's own state
under "algorithm" and its phase, the EMA copies, the data position, counters, RNG states, callback states,
and the resolved config as dicts/lists/scalars. `torch.load(weights_only=True)` therefore suffices,
and a file that needs anything more (a pickle that could run code) is refused.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path

import torch

from gancli import __version__
from gancli.core.errors import GanError
from gancli.core.files import fsync_dir, save_atomic

FORMAT = "gancli-checkpoint"
VERSION = 3  # 3: named-field data spec, algorithm state and phase; 2: discriminators are body + Critic heads


def _unreadable(path: Path, why: str) -> GanError:
    return GanError(
        f"{path} is corrupt or truncated and cannot be read ({why}). If it is last.pt, the numbered "
        f"checkpoints beside it are earlier copies."
    )


def load_checkpoint(path: str | os.PathLike) -> dict:
    path = Path(path).expanduser()
    if path.is_dir():
        cand = path / "checkpoints" / "last.pt"
        path = cand if cand.is_file() else path / "last.pt"
    if not path.is_file():
        raise GanError(f"checkpoint {path} does not exist. Runs keep theirs in <run dir>/checkpoints/last.pt.")
    # torch.save writes zip archives, and torch.load does not check their CRCs: a flipped bit would load silently.
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError):
        raise _unreadable(path, "not a zip archive: torn, or not a PyTorch checkpoint") from None
    if damaged:
        raise _unreadable(path, f"damaged entry {damaged}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "weights_only" in str(exc).lower():
            raise GanError(
                f"refused to load {path}: it holds Python objects beyond tensors and plain data, and unpickling "
                f"them could run code. gancli checkpoints never contain such objects; this file was written by "
                f"something else (or tampered with)."
            ) from None
        raise _unreadable(path, str(exc)) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError) as exc:
        raise _unreadable(path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        keys = ", ".join(map(str, list(obj)[:6])) if isinstance(obj, dict) else type(obj).__name__
        raise GanError(
            f"{path} is not a gancli checkpoint (it holds: {keys}). `gan sample` and `resume=` need a "
            f"file written by `gan train`."
        )
    if int(obj.get("version", 0)) > VERSION:
        raise GanError(
            f"{path} was written by a newer gancli (checkpoint format {obj['version']}, this is "
            f"{__version__} reading format {VERSION}); upgrade gancli."
        )
    return obj


_NUMBERED = re.compile(r"step_(\d+)\.pt$")


class CheckpointDir:
    """checkpoints/step_XXXXXXX.pt (the newest `keep`) plus last.pt, a hard link to the newest."""

    def __init__(self, folder: Path, keep: int):
        self.folder, self.keep = Path(folder), max(0, int(keep))
        for stale in self.folder.glob(".*.tmp-*"):  # left by a process killed mid-save; never a valid file
            stale.unlink(missing_ok=True)

    @property
    def last(self) -> Path:
        return self.folder / "last.pt"

    @staticmethod
    def _stamp(state: dict) -> dict:
        return {"format": FORMAT, "version": VERSION, "gancli_version": __version__, **state}

    def save_named(self, state: dict, name: str) -> Path:
        """A checkpoint beside the rotated ones that rotation never removes (e.g. best.pt)."""
        path = self.folder / name
        save_atomic(self._stamp(state), path)
        return path

    def save(self, state: dict, step: int) -> Path:
        state = self._stamp(state)
        if self.keep == 0:
            save_atomic(state, self.last)
            return self.last
        numbered = self.folder / f"step_{step:07d}.pt"
        save_atomic(state, numbered)
        self._point_last_to(numbered)
        self._prune()
        return numbered

    def _point_last_to(self, target: Path) -> None:
        tmp = self.folder / f".last.pt.tmp-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        try:
            try:
                os.link(target, tmp)  # no copy: same bytes, new name
            except OSError:
                import shutil

                shutil.copyfile(target, tmp)
            os.replace(tmp, self.last)
            fsync_dir(self.folder)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise GanError(
                f"could not update {self.last}: {exc.strerror or exc}. {target} was written and is "
                f"complete; resume from its run dir after freeing space."
            ) from None

    def _prune(self) -> None:
        found = sorted((int(m.group(1)), p) for p in self.folder.glob("step_*.pt") if (m := _NUMBERED.search(p.name)))
        for _, p in found[: -self.keep]:
            p.unlink(missing_ok=True)
