"""Reliability: every value is checked before any work (fuzzed), and file and process faults end in one
clear message with the last good checkpoint intact."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import TINY_OVERRIDES, compose_train
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gancli.algorithms.config_rules import train_rules as all_train_rules
from gancli.cli.app import register_resolvers, validate_overrides
from gancli.core.checkpoint import load_checkpoint
from gancli.core.errors import GanError
from gancli.core.rules import EVAL_RULES, SAMPLE_RULES
from gancli.training.run import build_trainer, plain_config

# a composition in which each rule's key exists
BASE = {
    "optimizer.momentum": ["optimizer=sgd"],
    "optimizer.alpha": ["optimizer=rmsprop"],
    "loss.clip": ["model=wgan"],
    "model.codes.categorical": ["model=infogan"],
    "model.codes.continuous": ["model=infogan"],
    "model.codes.cat_weight": ["model=infogan"],
    "model.codes.cont_weight": ["model=infogan"],
    "model.class_weight": ["model=acgan"],
    "model.head_hidden": ["model=infogan"],
    "model.discriminator.dropout": ["model=gan"],
    "dataset.std": ["dataset=ring8"],
    "dataset.split": ["dataset=mnist"],
    "dataset.max_memory_mb": ["dataset=image_folder", "dataset.root=/tmp"],
    "model.generator.fc": ["model=infogan"],
    "model.discriminator.fc": ["model=infogan"],
    "model.discriminator.leak": ["+model.discriminator.leak=0.2"],
    "optimizer.d.lr": ["model=rgan"],
    "model.generator.output": ["experiment=infogan_mnist"],
    "model.discriminator.input_range": ["experiment=infogan_mnist"],
    "model.generator.upsample": ["model=infogan"],
    "model.generator.init": ["model=rgan"],
    "model.discriminator.init": ["model=rgan"],
    **{k: ["dataset=mnist_seq"] for k in ("dataset.layout", "dataset.resize", "dataset.part", "dataset.part_seed")},
    **{
        k: ["model=aae"]
        for k in (
            "model.prior",
            "model.prior_labels",
            "model.labelled",
            "model.encoder.kind",
            "model.condition.decoder",
        )
    },
    **{
        k: ["model=aae_dimred"]
        for k in ("model.clusters", "model.head_distance", "model.head_weight", "model.d_input_noise")
    },
    "model.optimizers": ["model=aae"],
    "model.reconstruct_labelled": ["model=aae_semi"],
    **{
        k: ["model=bigan"]
        for k in (
            "model.update",
            "model.d_batch",
            "model.discriminator.zero_head",
            "model.generator.z_skip",
            "model.generator.affine",
            "model.generator.init_std",
            "model.discriminator.affine",
            "model.discriminator.init_std",
        )
    },
    **{
        k: ["model=progan"]
        for k in (
            "model.fade_images",
            "model.stable_images",
            "model.mbstd_group",
            "model.drift",
            "model.gp_weight",
            "model.width",
            "model.max_width",
        )
    },
    **{
        k: ["model=stylegan2"]
        for k in (
            "model.w_dim",
            "model.mapping_layers",
            "model.mapping_lr_mul",
            "model.style_mixing",
            "model.r1_gamma",
            "model.r1_every",
            "model.pl_weight",
            "model.pl_every",
            "model.pl_decay",
            "model.pl_batch_shrink",
        )
    },
}
NO_BASE = {"model.generator.dropout"}  # no preset has it; a rule for users who add it
BAD = [-1, 0, -0.5, 2, 1.5, 1e9, "abc", "'[1,2,3]'", "null", "true", "nan"]


def train_rules():
    return [r for r in all_train_rules() if r.key not in NO_BASE]


def override(key: str, value) -> str:
    return f"{key}={value}"


def parsed(value):
    """What Hydra makes of the override text (numbers, null, bools, strings)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_override(f"k={value}").value()


register_resolvers()


@pytest.mark.slow
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule=st.sampled_from(train_rules()), value=st.sampled_from(BAD))
def test_a_bad_value_of_any_train_key_is_refused_by_name_before_any_work(rule, value):
    try:
        v = parsed(value)
    except Exception:
        return
    if rule.ok(v):  # not bad for this key (0 is a fine sample_every)
        return
    with pytest.raises(GanError) as info:
        validate_overrides("train", [*BASE.get(rule.key, []), override(rule.key, value)])
    assert rule.key in str(info.value)


@pytest.mark.slow
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule=st.sampled_from(SAMPLE_RULES + EVAL_RULES), value=st.sampled_from(BAD))
def test_a_bad_value_of_any_sample_or_eval_key_is_refused_by_name(rule, value):
    try:
        v = parsed(value)
    except Exception:
        return
    if rule.ok(v):
        return
    from gancli.cli import schema

    schema.register_sample()
    name = "sample" if rule in SAMPLE_RULES else "gan_eval"
    fixed = ["ckpt=x.pt"] if name == "sample" else []
    with pytest.raises(GanError) as info:
        validate_overrides(name, [*fixed, override(rule.key, value)])
    assert rule.key in str(info.value)


@pytest.mark.slow
def test_every_rule_names_a_key_the_configs_have():
    """A rule for a key no config has would guard nothing (a renamed key, say)."""
    for rule in train_rules():
        cfg = compose_train(BASE.get(rule.key, []))
        node = cfg
        for part in rule.key.split("."):
            assert part in node, f"no config has {rule.key}"
            node = node[part]


@pytest.mark.parametrize(
    "args, message",
    [
        (["trainer.batch_size=0"], "trainer.batch_size=0 is not allowed"),
        (["optimizer.lr=-1"], "optimizer.lr=-1 is not allowed"),
        (["seed=abc"], "seed='abc' is not allowed"),
        (["trainer.steps=-5"], "trainer.steps=-5 is not allowed"),
        (["tricks.pack=3"], "tricks.pack=3 must divide trainer.batch_size=32"),
        (["trainer.ema=0.99", "trainer.ema_start=9000"], "trainer.ema_start=9000 is not before the last step"),
    ],
)
@pytest.mark.slow
def test_the_command_line_refuses_bad_values_in_one_paragraph_and_writes_nothing(tmp_path, args, message):
    r = subprocess.run(
        [sys.executable, "-m", "gancli", "train", *args, f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_run_dir_that_cannot_be_created_is_one_message(tmp_path):
    (tmp_path / "file").write_text("")
    for where in ("hydra.run.dir", "hydra.sweep.dir"):
        extra = ["-m", "model=dcgan,lsgan"] if where == "hydra.sweep.dir" else []
        r = subprocess.run(
            [sys.executable, "-m", "gancli", "train", *extra, f"{where}={tmp_path / 'file' / 'run'}"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 2 and "cannot create or write the run dir" in r.stderr and where in r.stderr
        assert "Traceback" not in r.stderr


# ------------------------------------------------------------------------------------------ faults


def tiny(*extra):
    return plain_config(compose_train([*TINY_OVERRIDES, "trainer.ckpt_every=2", "trainer.log_every=1", *extra]))


def poison(trainer, at_step: int):
    """Make the step numbered `at_step` (1-based) report an infinite D loss."""
    step = trainer.algorithm.train_step
    calls = {"n": 0}

    def train_step(next_batch, s):
        logs = step(next_batch, s)
        calls["n"] += 1
        if s + 1 == at_step and calls.setdefault("poisoned", 0) == 0:
            calls["poisoned"] = 1
            logs["loss/D"] = logs["loss/D"] * float("inf")
        return logs

    trainer.algorithm.train_step = train_step
    return calls


def test_a_nan_loss_stops_the_run_naming_the_loss_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = build_trainer(tiny(), tmp_path)
    poison(trainer, 5)
    with pytest.raises(GanError, match=r"loss/D became inf by step 5.*last good checkpoint.*step 4.*trainer.nan=skip"):
        trainer.fit()
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == 4
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*.pt")) == [
        "step_0000002.pt",
        "step_0000004.pt",
    ]


def test_nan_skip_restores_the_last_checkpoint_and_goes_on_at_half_the_rate(tmp_path):
    trainer = build_trainer(tiny("trainer.nan=skip"), tmp_path)
    lr = trainer.algorithm.optimizers["G"].param_groups[0]["lr"]
    poison(trainer, 5)
    summary = trainer.fit()
    assert summary["status"] == "finished" and summary["step"] == 6
    assert trainer.algorithm.optimizers["G"].param_groups[0]["lr"] == pytest.approx(lr / 2)
    steps = [json.loads(ln)["step"] for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]  # the diverged step's line is not kept
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert all(math.isfinite(v.float().sum().item()) for v in state["nets"]["G"].values())


def test_a_nan_before_a_checkpoint_never_reaches_the_disk(tmp_path):
    trainer = build_trainer(
        plain_config(compose_train([*TINY_OVERRIDES, "trainer.ckpt_every=2", "trainer.log_every=3"])), tmp_path
    )
    poison(trainer, 2)  # logged at step 3; the step-2 checkpoint comes first
    with pytest.raises(GanError, match="became inf"):
        trainer.fit()
    assert not (tmp_path / "checkpoints" / "last.pt").exists()


def test_a_second_ctrl_c_during_the_final_save_waits_for_it(tmp_path, monkeypatch):
    import gancli.core.files as files

    trainer = build_trainer(tiny("trainer.steps=2", "trainer.ckpt_every=100"), tmp_path)
    real_save = files.torch.save

    def interrupted_save(obj, f, *a, **k):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of the write
        time.sleep(0.05)
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(files.torch, "save", interrupted_save)
    # Ctrl-C as a terminal delivers it, also when the suite runs under nohup (which ignores SIGINT)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):  # delivered after the write, not during it
            trainer.fit()
    finally:
        signal.signal(signal.SIGINT, previous)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == 2


def test_sigterm_during_a_checkpoint_write_stops_the_run_like_ctrl_c(tmp_path, monkeypatch):
    import gancli.core.files as files

    trainer = build_trainer(tiny("trainer.steps=6"), tmp_path)
    real_save, sent = files.torch.save, []

    def terminated_save(obj, f, *a, **k):
        if not sent:
            sent.append(1)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(files.torch, "save", terminated_save)
    summary = trainer.fit()
    assert summary["status"] == "interrupted" and summary["signal"] == signal.SIGTERM and summary["step"] == 2
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == 2


@pytest.mark.slow
def test_a_run_dir_in_use_by_a_live_run_is_refused_and_a_dead_one_frees_it(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX); f.write('4242'); "
                "f.flush(); print('held', flush=True); time.sleep(60)"
            ),
            str(run / ".lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        r = subprocess.run(
            [sys.executable, "-m", "gancli", "train", *TINY_OVERRIDES, "trainer.steps=1", f"hydra.run.dir={run}"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 2 and "in use by another live run (process 4242)" in r.stderr, r.stderr
    finally:
        holder.kill()
        holder.wait()
    r = subprocess.run(
        [sys.executable, "-m", "gancli", "train", *TINY_OVERRIDES, "trainer.steps=1", f"hydra.run.dir={run}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr


def test_a_corrupt_image_among_good_ones_is_skipped_and_counted(tmp_path, compose_cfg, caplog):
    from PIL import Image

    from gancli.data import build_dataset

    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(4):
        Image.new("RGB", (12, 12), (60 * i, 0, 0)).save(root / f"{i}.png")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    source = build_dataset(
        compose_cfg(["dataset=image_folder", f"dataset.root={root}", "dataset.resolution=8"]).dataset
    )
    assert len(source.reference(100)["x"]) == 4
    assert "skipped 1 of 5 image files" in caplog.text and "broken.png" in caplog.text
    for p in root.glob("[0-9].png"):
        p.write_bytes(b"not an image")
    with pytest.raises(GanError, match="none of the 5 image files"):
        build_dataset(compose_cfg(["dataset=image_folder", f"dataset.root={root}", "dataset.resolution=8"]).dataset)
