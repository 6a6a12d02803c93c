"""Checkpoints: roundtrip, pruning, atomic writes under crashes, and refusal of bad files."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import gancli.core.checkpoint as ckpt_mod
from gancli.core.checkpoint import FORMAT, VERSION, CheckpointDir, load_checkpoint
from gancli.core.errors import GanError


def state(step: int) -> dict:
    g = torch.Generator().manual_seed(step)
    return {
        "step": step,
        "nets": {"G": {"w": torch.randn(64, 8, generator=g), "b": torch.zeros(8)}},
        "config": {"model": {"name": "dcgan"}, "seed": 0, "betas": [0.5, 0.999], "resume": None},
    }


def numbered(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("step_*.pt"))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "tmp" in p.name)


# ------------------------------------------------------------------------------------------ roundtrip


def test_roundtrip(tmp_path):
    d = CheckpointDir(tmp_path / "checkpoints", keep=3)
    s = state(7)
    path = d.save(s, 7)
    assert path == tmp_path / "checkpoints" / "step_0000007.pt"
    for p in (path, d.last):
        obj = load_checkpoint(p)
        assert obj["format"] == FORMAT and obj["version"] == VERSION
        assert obj["step"] == 7
        assert torch.equal(obj["nets"]["G"]["w"], s["nets"]["G"]["w"])
        assert obj["config"] == s["config"]


def test_load_from_run_dir(tmp_path):
    CheckpointDir(tmp_path / "checkpoints", keep=1).save(state(3), 3)
    assert load_checkpoint(tmp_path)["step"] == 3  # <run dir> → checkpoints/last.pt


def test_keep_prunes_and_last_is_newest(tmp_path):
    d = CheckpointDir(tmp_path / "ck", keep=2)
    for step in (1, 2, 3, 4, 5):
        d.save(state(step), step)
        assert load_checkpoint(d.last)["step"] == step
    assert numbered(d.folder) == ["step_0000004.pt", "step_0000005.pt"]
    assert torch.equal(load_checkpoint(d.last)["nets"]["G"]["w"], state(5)["nets"]["G"]["w"])
    assert d.last.read_bytes() == (d.folder / "step_0000005.pt").read_bytes()
    assert leftovers(d.folder) == []


def test_prune_orders_numerically_not_by_name(tmp_path):
    d = CheckpointDir(tmp_path / "ck", keep=2)
    for step in (9, 10, 11, 12000000):  # 12000000 has 8 digits: wider than the 7-digit padding
        d.save(state(step), step)
    assert numbered(d.folder) == ["step_0000011.pt", "step_12000000.pt"]
    assert load_checkpoint(d.last)["step"] == 12000000


def test_keep_zero_writes_only_last(tmp_path):
    d = CheckpointDir(tmp_path / "ck", keep=0)
    d.save(state(1), 1)
    d.save(state(2), 2)
    assert sorted(p.name for p in d.folder.iterdir()) == ["last.pt"]
    assert load_checkpoint(d.last)["step"] == 2


def test_last_survives_pruning_of_its_target(tmp_path):
    """last.pt is a link to (or copy of) a numbered file; deleting numbered files must not break it."""
    d = CheckpointDir(tmp_path / "ck", keep=1)
    d.save(state(1), 1)
    d.save(state(2), 2)
    (d.folder / "step_0000002.pt").unlink()
    assert load_checkpoint(d.last)["step"] == 2


def test_missing_checkpoint(tmp_path):
    with pytest.raises(GanError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_newer_format_refused(tmp_path):
    p = tmp_path / "future.pt"
    torch.save({"format": FORMAT, "version": VERSION + 1, "step": 1}, p)
    with pytest.raises(GanError, match="newer gancli"):
        load_checkpoint(p)


# ------------------------------------------------------------------------------------------ crashes


def _failing_save(exc: BaseException):
    def fake_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip archive")  # a torn write: a few bytes, then the failure
        raise exc

    return fake_save


@pytest.mark.parametrize(
    "exc",
    [
        KeyboardInterrupt(),
        OSError(errno.ENOSPC, "No space left on device"),
        RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed"),
    ],
)
def test_failed_write_leaves_previous_checkpoint(tmp_path, monkeypatch, exc):
    d = CheckpointDir(tmp_path / "ck", keep=3)
    d.save(state(1), 1)
    good = d.last.read_bytes()
    monkeypatch.setattr(ckpt_mod.torch, "save", _failing_save(exc))
    if isinstance(exc, KeyboardInterrupt):
        with pytest.raises(KeyboardInterrupt):
            d.save(state(2), 2)
    else:
        with pytest.raises(GanError) as info:
            d.save(state(2), 2)
        msg = str(info.value)
        assert "could not write checkpoint" in msg and "intact" in msg
        if isinstance(exc, OSError):
            assert "No space left on device" in msg and "disk" in msg
    monkeypatch.undo()
    assert d.last.read_bytes() == good
    assert load_checkpoint(d.last)["step"] == 1
    assert numbered(d.folder) == ["step_0000001.pt"]
    assert leftovers(d.folder) == []


def test_failed_write_of_last_with_keep_zero(tmp_path, monkeypatch):
    """keep=0 writes last.pt directly: the atomic rename is all that protects it."""
    d = CheckpointDir(tmp_path / "ck", keep=0)
    d.save(state(1), 1)
    monkeypatch.setattr(ckpt_mod.torch, "save", _failing_save(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(GanError, match="disk"):
        d.save(state(2), 2)
    monkeypatch.undo()
    assert load_checkpoint(d.last)["step"] == 1
    assert leftovers(d.folder) == []


CRASH_SNIPPET = textwrap.dedent("""
    import os, signal, sys
    import torch
    from gancli.core.checkpoint import CheckpointDir

    d = CheckpointDir(sys.argv[1], keep=int(sys.argv[2]))
    d.save({"step": 1, "w": torch.arange(1000.0)}, 1)

    real_save = torch.save
    def dying_save(obj, f, *args, **kwargs):
        f.write(b"PK\\x03\\x04" + b"x" * 4096)   # part of the new file is on disk ...
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)      # ... when the process dies

    torch.save = dying_save
    d.save({"step": 2, "w": torch.zeros(1000)}, 2)
    print("unreachable")
""")


@pytest.mark.slow
@pytest.mark.parametrize("keep", [3, 0])  # keep=0 writes last.pt itself, not a numbered file
def test_sigkill_mid_write_keeps_last(tmp_path, keep):
    folder = tmp_path / "ck"
    proc = subprocess.run(
        [sys.executable, "-c", CRASH_SNIPPET, str(folder), str(keep)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "unreachable" not in proc.stdout
    # the torn temp file is there (nobody could clean it up) but nothing points at it
    torn = ".step_0000002.pt.tmp" if keep else ".last.pt.tmp"
    assert any(p.name.startswith(torn) for p in folder.iterdir())
    obj = load_checkpoint(folder / "last.pt")
    assert obj["step"] == 1
    assert torch.equal(obj["w"], torch.arange(1000.0))
    assert numbered(folder) == (["step_0000001.pt"] if keep else [])
    # and the next save in a new process works alongside the leftover
    d = CheckpointDir(folder, keep=keep)
    d.save(state(2), 2)
    assert load_checkpoint(d.last)["step"] == 2


# ------------------------------------------------------------------------------------------ bad files


def _real_checkpoint(tmp_path) -> Path:
    return CheckpointDir(tmp_path / "ck", keep=1).save(state(5), 5)


def test_truncated_checkpoint(tmp_path):
    src = _real_checkpoint(tmp_path)
    data = src.read_bytes()
    p = tmp_path / "half.pt"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(GanError, match=r"corrupt|truncated") as info:
        load_checkpoint(p)
    assert str(p) in str(info.value)


@pytest.mark.parametrize("content", [os.urandom(4096), b"", b"PK\x03\x04" + os.urandom(512)])
def test_garbage_checkpoint(tmp_path, content):
    p = tmp_path / "garbage.pt"
    p.write_bytes(content)
    with pytest.raises(GanError, match=r"corrupt|truncated"):
        load_checkpoint(p)


def test_foreign_checkpoint(tmp_path):
    p = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"conv.weight": torch.zeros(2, 2)}, "epoch": 3}, p)
    with pytest.raises(GanError, match="not a gancli checkpoint") as info:
        load_checkpoint(p)
    assert "state_dict" in str(info.value)


def test_foreign_non_dict(tmp_path):
    p = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), p)
    with pytest.raises(GanError, match="not a gancli checkpoint"):
        load_checkpoint(p)


class _RunsCode:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_code_running_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "version": VERSION, "step": 1, "payload": _RunsCode(f"touch '{marker}'")}, p)
    with pytest.raises(GanError, match="refused") as info:
        load_checkpoint(p)
    assert str(p) in str(info.value)
    assert not marker.exists()
    # the payload is live: an unsafe load would have run it (so the check above can fail)
    torch.load(p, weights_only=False)
    assert marker.exists()


def test_zip_that_is_not_a_torch_archive(tmp_path):
    import zipfile

    p = tmp_path / "other.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(GanError, match=r"corrupt|truncated"):
        load_checkpoint(p)


def test_bit_flipped_tensor_data_is_detected(tmp_path):
    import zipfile

    src = _real_checkpoint(tmp_path)
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    h = info.header_offset  # local header: name and extra lengths at bytes 26..29
    start = h + 30 + int.from_bytes(data[h + 26 : h + 28], "little") + int.from_bytes(data[h + 28 : h + 30], "little")
    assert info.file_size >= 64
    for i in range(start + 16, start + 48):
        data[i] ^= 0xFF
    p = tmp_path / "flipped.pt"
    p.write_bytes(bytes(data))
    torn, orig = torch.load(p, weights_only=True)["nets"]["G"], state(5)["nets"]["G"]
    assert any(not torch.equal(torn[k], orig[k]) for k in orig)  # the flip did hit tensor bytes
    with pytest.raises(GanError, match="corrupt"):
        load_checkpoint(p)
