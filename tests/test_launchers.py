"""Sweeps through Hydra's launcher plugins (the `launchers` extra): jobs in parallel local processes or
SLURM, each a plain `gan train`; a launcher that is not installed is one message."""

from __future__ import annotations

import importlib.util
import json

import pytest
from test_cli import gan

from gancli.cli import app
from gancli.core.errors import GanError

POINTS = [
    "dataset=ring8",
    "dataset.n=512",
    "trainer.steps=6",
    "trainer.batch_size=32",
    "trainer.log_every=2",
    "trainer.progress=false",
    "logger=none",
]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_sweep_through_a_launcher_runs_every_job(tmp_path, launcher):
    module, _ = app.LAUNCHERS[launcher]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"the {launcher} launcher is not installed (pip install 'gancli[launchers]')")
    out = gan(
        "train",
        "-m",
        "model=gan,lsgan",
        *POINTS,
        f"hydra/launcher={launcher}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    summaries = sorted((tmp_path / "sweep").glob("*/summary.json"))
    assert [json.loads(p.read_text())["status"] for p in summaries] == ["finished", "finished"]
    assert "model=lsgan" in out.stdout and "no summary" not in out.stdout  # the launcher's own folders are no jobs


def test_a_launcher_that_is_not_installed_names_the_extra(monkeypatch):
    monkeypatch.setitem(app.LAUNCHERS, "joblib", ("hydra_plugins.not_installed_launcher", "hydra-joblib-launcher"))
    with pytest.raises(GanError, match=r"hydra/launcher=joblib needs .*pip install 'gancli\[launchers\]'"):
        app.check_launcher(["model=gan", "hydra/launcher=joblib"])
    with pytest.raises(GanError, match="unknown hydra/launcher 'slurm'; gancli knows: basic, joblib"):
        app.check_launcher(["hydra/launcher=slurm"])
    app.check_launcher(["hydra/launcher=basic"])


def test_the_command_line_reports_a_missing_launcher_without_a_traceback(tmp_path):
    out = gan("train", "-m", "model=gan", *POINTS, "hydra/launcher=slurm", cwd=tmp_path)
    assert out.returncode != 0 and "unknown hydra/launcher 'slurm'" in out.stderr and "Traceback" not in out.stderr
