"""Evaluation end to end: `gan eval` of checkpoints and of samples, evaluation during training with best.pt,
the sweep table's metric, and `gan report`'s page opened in a real browser."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_OVERRIDES, compose_train

from gancli.core.checkpoint import load_checkpoint
from gancli.training.run import build_trainer, plain_config

EVAL = [
    "eval.features=classifier",
    "eval.classifier_epochs=1",
    "eval.reference_n=512",
    "eval.n=256",
    "eval.kid_subset_size=100",
    "eval.kid_subsets=5",
]


def gan(*args, cwd=None):
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "gancli", *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


@pytest.fixture
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cache"))


@pytest.mark.slow
def test_real_test_images_score_far_better_than_a_200_step_dcgan(tmp_path, cache):
    """The floor: shapes drawn with another seed, against the training reference, scored as samples."""
    from omegaconf import OmegaConf

    from gancli.data import build_dataset

    common = [
        "dataset.n=2000",
        "dataset.resolution=16",
        f"cache_dir={cache}",
        "features=classifier",
        "classifier_epochs=1",
        "reference_n=2000",
        "kid_subset_size=500",
        "kid_subsets=10",
        "metrics=[fid,kid,pr]",
    ]
    run = tmp_path / "run"
    r = gan(
        "train",
        "dataset.n=2000",
        "dataset.resolution=16",
        "model.generator.width=8",
        "model.discriminator.width=8",
        "trainer.batch_size=32",
        "trainer.steps=200",
        "logger=none",
        f"hydra.run.dir={run}",
    )
    assert r.returncode == 0, r.stderr
    r = gan("eval", f"ckpt={run}/checkpoints/last.pt", "n=1000", "dataset=shapes", *common)
    assert r.returncode == 0, r.stderr
    model = json.loads((run / "checkpoints" / "last.eval.json").read_text())
    cfg = OmegaConf.create(
        {
            "name": "shapes",
            "resolution": 16,
            "n": 2000,
            "seed": 1234 + 1_000_003,
            "classes": ["circle", "square", "triangle", "cross", "star"],
            "rotation": 15,
            "root": None,
        }
    )
    real = build_dataset(cfg).reference(2000)["x"][:1000]  # the test part's first 1000: the floor's
    images = ((real + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    np.savez(tmp_path / "real.npz", images=images)
    r = gan("eval", f"samples={tmp_path / 'real.npz'}", "dataset=shapes", *common, "floor=false")
    assert r.returncode == 0, r.stderr
    floor = json.loads((tmp_path / "real.eval.json").read_text())["values"]
    v = {k.replace("@classifier:shapes", ""): x for k, x in model["values"].items()}  # every value names its features
    assert set(v) == {"fid", "kid", "kid_std", "precision", "recall"} and model["features"] == "classifier:shapes"
    floor = {k.replace("@classifier:shapes", ""): x for k, x in floor.items()}
    assert floor["fid"] < v["fid"] / 5 and floor["kid"] < v["kid"] / 5 and floor["precision"] > v["precision"]
    assert model["floor"]["fid@classifier:shapes"] == pytest.approx(floor["fid"], rel=1e-6)  # the same measure
    assert "classifier features" in model["protocol"]["features"] and model["protocol"]["n"] == 1000
    assert "fid@classifier:shapes" in r.stdout and "floor" in r.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["metrics=[fdi]"], "unknown metric 'fdi'"),
        (["metrics=[modes]"], "metric 'modes' measures points samples"),
        (["metrics=[kid]", "n=50"], "kid_subset_size=1000"),
        (["metrics=[class_acc]"], "conditioned on them"),
    ],
)
@pytest.mark.slow
def test_gan_eval_refuses_what_does_not_fit_in_one_paragraph(tmp_path, cache, args, message):
    run = tmp_path / "run"
    assert gan("train", *TINY_OVERRIDES, "trainer.steps=1", f"hydra.run.dir={run}").returncode == 0
    r = gan("eval", f"ckpt={run}", f"cache_dir={cache}", "features=classifier", *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (run / "checkpoints" / "last.eval.json").exists()


@pytest.mark.slow
def test_gan_eval_needs_one_source_and_a_dataset_for_samples(tmp_path):
    assert "either a checkpoint" in gan("eval").stderr
    np.savez(tmp_path / "s.npz", images=np.zeros((4, 8, 8, 3), np.uint8))
    assert "dataset=" in gan("eval", f"samples={tmp_path / 's.npz'}").stderr
    r = gan(
        "eval",
        f"samples={tmp_path / 's.npz'}",
        "dataset=shapes",
        "dataset.n=64",
        "reference_n=64",
        "features=classifier",
        f"cache_dir={tmp_path}",
    )
    assert r.returncode == 2 and "(N, 32, 32, 3) uint8" in r.stderr, r.stderr


def _script_fids(monkeypatch, values: list[float]) -> None:
    """The evaluations "measure" these FIDs, in order (the rest of each report is real)."""
    scripted = iter(values)
    real_evaluate = __import__("gancli.metrics", fromlist=["evaluate"]).evaluate

    def fake_evaluate(ctx, with_floor=True):
        report = real_evaluate(ctx, with_floor=False)
        report.values["fid"] = next(scripted)
        return report

    monkeypatch.setattr("gancli.metrics.evaluate", fake_evaluate)


def _best_fid_run(cache, steps: int) -> dict:
    """A tiny run evaluated every 2 steps that keeps best.pt by FID."""
    return plain_config(
        compose_train(
            [
                *TINY_OVERRIDES,
                *EVAL,
                f"trainer.steps={steps}",
                "trainer.ckpt_every=2",
                "eval.every=2",
                "eval.metrics=[fid]",
                "eval.best=fid",
                f"eval.cache_dir={cache}",
            ]
        )
    )


def test_evaluation_during_training_keeps_the_best_checkpoint_and_resume_keeps_the_best(tmp_path, cache, monkeypatch):
    """best.pt is replaced only when the chosen value improves; after a resume the run's best so far counts."""

    _script_fids(monkeypatch, [5.0, 3.0, 4.0, 6.0, 2.0])
    cfg = _best_fid_run(cache, steps=10)
    saves = []
    trainer = build_trainer(copy.deepcopy(cfg), tmp_path)
    original = trainer.save_checkpoint
    trainer.save_checkpoint = lambda name=None: saves.append((trainer.step, name)) or original(name)
    trainer.fit(stop_after=6)  # evaluations at 2, 4, 6: 5, 3, 4
    assert [s for s in saves if s[1] == "best.pt"] == [(2, "best.pt"), (4, "best.pt")]
    assert load_checkpoint(tmp_path / "checkpoints" / "best.pt")["step"] == 4
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["callbacks"]["eval"] == {"best": 3.0, "best_step": 4, "best_name": "fid@classifier:shapes"}
    resumed = build_trainer(state["config"], tmp_path)
    resumed.load_state_dict(state)
    summary = resumed.fit()  # evaluations at 8, 10: 6 (no), 2 (yes)
    assert load_checkpoint(tmp_path / "checkpoints" / "best.pt")["step"] == 10
    assert summary["best"] == {"key": "fid@classifier:shapes", "value": 2.0, "step": 10}
    lines = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    key = "eval/fid@classifier:shapes"  # the logged name carries the features
    assert [ln[key] for ln in lines if key in ln] == [5.0, 3.0, 4.0, 6.0, 2.0]
    assert not any("eval/fid" in ln for ln in lines)


def test_no_evaluation_before_best_after_is_kept_as_best(tmp_path, cache, monkeypatch):
    """eval.best_after=4: the FID of 1 at step 2 (and the 3 at step 4) are logged, never kept; best.pt is the
    best evaluation after step 4 (the RGAN authors keep none in their first 10 epochs)."""
    _script_fids(monkeypatch, [1.0, 3.0, 5.0, 2.0, 4.0])
    cfg = _best_fid_run(cache, steps=10)
    cfg["eval"]["best_after"] = 4
    summary = build_trainer(cfg, tmp_path).fit()
    assert load_checkpoint(tmp_path / "checkpoints" / "best.pt")["step"] == 8
    assert summary["best"] == {"key": "fid@classifier:shapes", "value": 2.0, "step": 8}


def test_a_best_measured_on_other_features_is_not_compared_with(tmp_path, cache, monkeypatch):
    """A resumed run whose best was on other features (or saved before values named them) starts best.pt
    again at its first evaluation, even with a worse figure."""
    _script_fids(monkeypatch, [3.0, 9.0])
    cfg = _best_fid_run(cache, steps=4)
    trainer = build_trainer(copy.deepcopy(cfg), tmp_path)
    trainer.fit(stop_after=2)  # best 3.0 at step 2
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    state["callbacks"]["eval"]["best_name"] = "fid@inception"
    resumed = build_trainer(state["config"], tmp_path)
    resumed.load_state_dict(state)
    summary = resumed.fit()  # 9.0 at step 4: worse than 3.0, but 3.0 was another measure
    assert summary["best"] == {"key": "fid@classifier:shapes", "value": 9.0, "step": 4}
    assert load_checkpoint(tmp_path / "checkpoints" / "best.pt")["step"] == 4


def test_eval_best_must_be_a_value_of_the_metrics(tmp_path, cache):
    from gancli.core.errors import GanError

    cfg = plain_config(
        compose_train(
            [
                *TINY_OVERRIDES,
                *EVAL,
                "eval.every=2",
                "eval.metrics=[fid]",
                "eval.best=precision",
                f"eval.cache_dir={cache}",
            ]
        )
    )
    with pytest.raises(GanError, match="eval.best=precision is not a value of eval.metrics"):
        build_trainer(cfg, tmp_path)
    cfg = plain_config(
        compose_train(
            [
                "dataset=ring8",
                "dataset.n=512",
                "trainer.batch_size=32",
                "eval.every=2",
                "eval.metrics=[fid]",
                f"eval.cache_dir={cache}",
            ]
        )
    )
    with pytest.raises(GanError, match="metric 'fid' measures image samples; this model makes points"):
        build_trainer(cfg, tmp_path / "points")


@pytest.mark.slow
def test_a_sweep_shows_the_metric_and_its_report_opens_in_a_browser(tmp_path, cache):
    sweep = tmp_path / "sweep"
    r = gan(
        "train",
        "-m",
        "model=dcgan,lsgan",
        *TINY_OVERRIDES,
        *EVAL,
        "eval.every=3",
        "eval.metrics=[fid,pr]",
        "eval.best=fid",
        f"eval.cache_dir={cache}",
        f"hydra.sweep.dir={sweep}",
    )
    assert r.returncode == 0, r.stderr
    assert "fid" in r.stdout and "(best, step" in r.stdout  # the sweep table's metric column
    r = gan("report", f"run={sweep}")
    assert r.returncode == 0, r.stderr
    page = sweep / "report.html"
    images, rows = browse(page)
    assert rows == 2
    assert images and all(ok for _, ok in images), [src for src, ok in images if not ok]
    single = gan("report", f"run={sweep / '0'}", f"out={tmp_path / 'one' / 'r.html'}")
    assert single.returncode == 0
    images, _ = browse(tmp_path / "one" / "r.html")
    assert len(images) >= 3 and all(ok for _, ok in images)


def browse(page: Path) -> tuple[list[tuple[str, bool]], int]:
    """Open the page in headless Chromium: (each image and whether it loaded, leaderboard rows)."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = shutil.which("chromium")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(page.resolve().as_uri())
        images = driver.execute_script(
            "return [...document.images].map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])"
        )
        rows = driver.execute_script("return document.querySelectorAll('#leaderboard tr.job').length")
    finally:
        driver.quit()
    return [tuple(i) for i in images], rows


def test_the_leaderboard_ranks_by_one_logged_name_and_never_across_features(tmp_path):
    from gancli.commands.report import write_report
    from gancli.core.errors import GanError

    def job(name, metrics, best=None):
        (tmp_path / name).mkdir()
        summary = {
            "status": "finished",
            "overrides": [f"job={name}"],
            "metrics": metrics,
            **({"best": best} if best else {}),
        }
        (tmp_path / name / "summary.json").write_text(json.dumps(summary))

    job("0", {"eval/fid@inception": 30.0})
    job("1", {"eval/fid@inception": 20.0})
    job("2", {"eval/fid@classifier:mnist": 1.0})  # far "better", on other features
    job("3", {"eval/fid": 0.5})  # logged before values named their features
    with pytest.raises(
        GanError,
        match=r"metric=fid: .*fid@inception, fid@classifier:mnist, fid \(features not recorded\).*metric=fid@inception",
    ):
        write_report(tmp_path, metric="fid")
    page = write_report(tmp_path, metric="fid@inception").read_text()
    board = page.split("id='leaderboard'")[1].split("</table>")[0]
    assert "sorted by fid@inception (lower is better)" in page
    cells = [[c.split("<")[0] for c in r.split("<td>")[1:]] for r in board.split("<tr class='job'>")[1:]]
    assert [(c[1], c[4]) for c in cells] == [("1", "20"), ("0", "30"), ("2", ""), ("3", "")]  # 2, 3: no such value
    shutil.rmtree(tmp_path / "2")
    shutil.rmtree(tmp_path / "3")
    (tmp_path / "report.html").unlink()
    assert "sorted by fid@inception" in write_report(tmp_path, metric="fid").read_text()  # one extractor: fid means it
