"""The `gan` console script end to end, as a user runs it (true subprocesses)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

TINY = [
    "dataset.n=128",
    "dataset.resolution=16",
    "model.generator.width=8",
    "model.discriminator.width=8",
    "trainer.batch_size=16",
    "trainer.log_every=2",
    "trainer.sample_every=2",
    "trainer.ckpt_every=2",
    "logger=none",
    "trainer.sample_n=16",
]


def gan(*args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", "gancli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=env,
    )


def test_top_level_help_lists_subcommands():
    r = gan("--help")
    assert r.returncode == 0
    assert "train" in r.stdout and "sample" in r.stdout


def test_unknown_subcommand_suggests_the_right_one():
    r = gan("trian")
    assert r.returncode != 0
    assert "unknown command 'trian'" in r.stderr and "train" in r.stderr


@pytest.mark.parametrize(
    "override, must_say",
    [
        ("trainer.stpes=10", ["trainer.stpes", "steps", "batch_size"]),
        ("model=wgangp", ["model 'wgangp'", "wgan_gp", "dcgan", "lsgan"]),
        ("dataset=cifar", ["dataset 'cifar'", "cifar10", "shapes"]),
        ("trainer.steps=abc", ["trainer.steps", "abc"]),
    ],
)
@pytest.mark.slow
def test_config_mistakes_fail_before_work_with_one_clear_message(tmp_path, override, must_say):
    r = gan("train", override, f"hydra.run.dir={tmp_path / 'run'}")
    assert r.returncode == 2
    for text in must_say:
        assert text in r.stderr, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert len(r.stderr.strip().splitlines()) <= 3
    assert not (tmp_path / "run").exists()  # no work was done


def test_sweep_values_are_validated_too(tmp_path):
    r = gan("train", "-m", "model=dcgan,wgangp", f"hydra.sweep.dir={tmp_path}")
    assert r.returncode == 2 and "wgangp" in r.stderr and "Traceback" not in r.stderr


def test_cfg_job_prints_the_composed_config():
    r = gan("train", "--cfg", "job", "model=wgan_gp")
    assert r.returncode == 0
    assert "gp_weight: 10.0" in r.stdout and "n_critic: 5" in r.stdout


@pytest.mark.slow
def test_train_writes_the_run_dir_then_sample_writes_every_format(tmp_path):
    run = tmp_path / "run"
    r = gan("train", *TINY, "trainer.steps=4", f"hydra.run.dir={run}")
    assert r.returncode == 0, r.stderr
    for f in (
        "config.yaml",
        "metrics.jsonl",
        "final.png",
        "train.log",
        "summary.json",
        "checkpoints/last.pt",
        "checkpoints/step_0000004.pt",
        "samples/step_0000002.png",
    ):
        assert (run / f).exists(), f
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [2, 4] and "loss/D" in lines[0] and "loss/G" in lines[0]

    ckpt = run / "checkpoints" / "last.pt"
    out = tmp_path / "out"
    assert gan("sample", f"ckpt={ckpt}", "n=10", "nrow=5", f"out={out}.png", cwd=tmp_path).returncode == 0
    assert (tmp_path / "out.png").stat().st_size > 0
    assert gan("sample", f"ckpt={ckpt}", "n=10", "format=npz", f"out={out}.npz").returncode == 0
    assert np.load(f"{out}.npz")["images"].shape == (10, 16, 16, 3)
    assert gan("sample", f"ckpt={ckpt}", "n=7", "format=npy", f"out={out}.npy").returncode == 0
    assert np.load(f"{out}.npy").dtype == np.uint8
    assert gan("sample", f"ckpt={ckpt}", "n=5", "format=png_dir", f"out={out}_dir").returncode == 0
    assert len(list((tmp_path / "out_dir").glob("*.png"))) == 5
    assert gan("sample", f"ckpt={ckpt}", "n=16", "nrow=4", "interpolate=true", f"out={out}_i.png").returncode == 0
    assert (tmp_path / "out_i.png").exists()
    # same seed → same samples; another seed → others
    gan("sample", f"ckpt={ckpt}", "n=10", "format=npz", "seed=0", f"out={out}2.npz")
    gan("sample", f"ckpt={ckpt}", "n=10", "format=npz", "seed=1", f"out={out}3.npz")
    a, b, c = (np.load(f"{out}{s}.npz")["images"] for s in ("", "2", "3"))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.slow
def test_points_sample_to_npy_of_shape_n_by_2(tmp_path):
    run = tmp_path / "ring"
    r = gan(
        "train",
        "model=gan",
        "dataset=ring8",
        "dataset.n=512",
        "trainer.steps=4",
        "trainer.batch_size=32",
        "logger=none",
        f"hydra.run.dir={run}",
    )
    assert r.returncode == 0, r.stderr
    assert (run / "final.png").exists()
    r = gan("sample", f"ckpt={run}/checkpoints/last.pt", "n=100", "format=npy", f"out={tmp_path}/p.npy")
    assert r.returncode == 0, r.stderr
    pts = np.load(tmp_path / "p.npy")
    assert pts.shape == (100, 2) and pts.dtype == np.float32
    r = gan("sample", f"ckpt={run}/checkpoints/last.pt", "format=png_dir", f"out={tmp_path}/d")
    assert r.returncode == 2 and "npy" in r.stderr


@pytest.mark.slow
def test_conditional_model_samples_by_class_from_the_command_line(tmp_path):
    run = tmp_path / "c"
    r = gan("train", "model=cdcgan", *TINY, "trainer.steps=2", f"hydra.run.dir={run}")
    assert r.returncode == 0, r.stderr
    ckpt = f"ckpt={run}/checkpoints/last.pt"
    r = gan("sample", ckpt, "class=star", "n=6", "format=npz", f"out={tmp_path}/s.npz")
    assert r.returncode == 0, r.stderr
    assert (np.load(tmp_path / "s.npz")["labels"] == 4).all()
    r = gan("sample", ckpt, "class=all", "nrow=3", f"out={tmp_path}/all.png")
    assert r.returncode == 0 and (tmp_path / "all.png").exists(), r.stderr
    r = gan("sample", ckpt, "class=hexagon", f"out={tmp_path}/x.png")
    assert r.returncode == 2 and "circle, square" in r.stderr and "Traceback" not in r.stderr
    r = gan("sample", ckpt, "traverse=c2", f"out={tmp_path}/x.png")
    assert r.returncode == 2 and "infogan" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_conditional_model_on_unlabelled_data_is_one_clear_line(tmp_path):
    from PIL import Image

    folder = tmp_path / "flat"
    folder.mkdir()
    for i in range(20):
        Image.fromarray(np.full((16, 16, 3), i * 10, np.uint8)).save(folder / f"{i}.png")
    r = gan(
        "train",
        "model=acgan",
        "dataset=image_folder",
        f"dataset.root={folder}",
        "dataset.resolution=16",
        "trainer.steps=1",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert r.returncode == 2 and "no class labels" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_multirun_gives_each_job_its_own_dir_and_a_table(tmp_path):
    r = gan("train", "-m", "model=dcgan,lsgan", *TINY, "trainer.steps=2", f"hydra.sweep.dir={tmp_path}")
    assert r.returncode == 0, r.stderr
    jobs = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert jobs == ["0", "1"]
    for j in jobs:
        assert (tmp_path / j / "checkpoints" / "last.pt").exists()
        assert json.loads((tmp_path / j / "summary.json").read_text())["status"] == "finished"
    assert "model=dcgan" in r.stdout and "model=lsgan" in r.stdout and "final.png" in r.stdout


@pytest.mark.slow
def test_sigint_saves_a_checkpoint_and_resume_finishes_the_run(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gancli",
            "train",
            *TINY,
            "trainer.steps=100000",
            "trainer.ckpt_every=100000",
            "trainer.log_every=1",
            f"hydra.run.dir={run}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not ((run / "metrics.jsonl").exists() and (run / "metrics.jsonl").stat().st_size):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    k = state["step"]
    assert k >= 1 and "resume=" in out
    r = gan("train", f"resume={run}", f"trainer.steps={k + 3}")
    assert r.returncode == 0, r.stderr
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["step"] == k + 3
    assert (run / "final.png").exists()


@pytest.mark.slow
def test_resume_refuses_other_overrides_and_missing_dirs(tmp_path):
    r = gan("train", f"resume={tmp_path}/nothing")
    assert r.returncode == 2 and "checkpoints/last.pt" in r.stderr
    run = tmp_path / "run"
    assert gan("train", *TINY, "trainer.steps=2", f"hydra.run.dir={run}").returncode == 0
    r = gan("train", f"resume={run}", "model=lsgan")
    assert r.returncode == 2 and "model=lsgan" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_sample_errors_are_one_paragraph(tmp_path):
    r = gan("sample")
    assert r.returncode == 2 and "ckpt" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    r = gan("sample", f"ckpt={tmp_path / 'junk.pt'}")
    assert r.returncode == 2 and "corrupt" in r.stderr and "Traceback" not in r.stderr


def test_user_errors_are_recognised_and_bugs_are_not():
    import errno

    from gancli.cli.app import as_user_error
    from gancli.core.errors import GanError

    assert str(as_user_error(GanError("x"))) == "x"
    full = as_user_error(OSError(errno.ENOSPC, "No space left on device", "/runs/a/samples/x.png"))
    assert "No space left on device" in str(full) and "/runs/a/samples/x.png" in str(full)

    class OutOfMemoryError(RuntimeError):  # torch.OutOfMemoryError's name
        pass

    assert "batch_size" in str(as_user_error(OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")))
    assert as_user_error(ZeroDivisionError("bug")) is None
