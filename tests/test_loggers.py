"""The `logger` config group: each backend, read back with its own tools, holds what metrics.jsonl holds; a
resumed run continues the same backend run without logging a step twice; a missing extra or a bad choice is
one message before any work."""

from __future__ import annotations

import csv
import json
import struct
import sys
import time
from pathlib import Path

import pytest
from conftest import TINY_OVERRIDES, compose_train
from test_cli import TINY as CLI_TINY
from test_cli import gan

from gancli.cli.app import register_resolvers, validate_overrides
from gancli.core.checkpoint import load_checkpoint
from gancli.core.errors import GanError
from gancli.training.loggers import check_loggers, logger_specs
from gancli.training.loggers.base import Logger
from gancli.training.run import build_trainer, plain_config


def train(tmp_path: Path, *overrides: str, name: str = "run") -> tuple[Path, dict]:
    """A 6-step run (log lines at steps 2, 4, 6; checkpoints at 3 and 6) with the given loggers."""
    config = plain_config(compose_train([*TINY_OVERRIDES, *overrides]))
    run_dir = tmp_path / name
    summary = build_trainer(config, run_dir).fit()
    assert summary["status"] == "finished" and not summary["logger_errors"]
    return run_dir, summary


def resume_from_step_3(run_dir: Path) -> dict:
    """Continue the run from its step-3 checkpoint, as after a crash at step 6 that lost the last checkpoint:
    steps 4 and 6 were logged once already and are logged again."""
    state = load_checkpoint(run_dir / "checkpoints" / "step_0000003.pt")
    trainer = build_trainer(state["config"], run_dir)
    trainer.load_state_dict(state)
    return trainer.fit()


def jsonl(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def scalars(rows: list[dict]) -> dict[tuple[int, str], float]:
    return {(int(r["step"]), k): float(v) for r in rows for k, v in r.items() if k != "step" and v not in ("", None)}


# ------------------------------------------------------------------------------- csv, tensorboard, lists


def test_csv_holds_the_jsonl_scalars_and_a_resume_writes_no_row_twice(tmp_path):
    run_dir, _ = train(tmp_path, "logger=csv")
    with open(run_dir / "metrics.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows, header = list(reader), reader.fieldnames
    assert header[0] == "step" and {"loss/D", "loss/G", "img_per_s"} <= set(header)
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    assert scalars(rows) == scalars(jsonl(run_dir))

    resume_from_step_3(run_dir)
    with open(run_dir / "metrics.csv", newline="") as f:
        again = list(csv.DictReader(f))
    assert [int(r["step"]) for r in again] == [2, 4, 6]  # 4 and 6 replaced, not appended
    assert scalars(again) == scalars(jsonl(run_dir))


def test_a_scalar_first_logged_later_adds_a_csv_column(tmp_path):
    from gancli.training.loggers.csv import CsvLogger

    logger = CsvLogger()
    logger.start(tmp_path, {}, None)
    logger.log(2, {"loss/D": 1.0})
    logger.log(2, {"eval/fid": 30.0})
    logger.log(4, {"loss/D": 0.5})
    logger.rewind(2)
    with open(tmp_path / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows == [{"step": "2", "loss/D": "1.0", "eval/fid": ""}, {"step": "2", "loss/D": "", "eval/fid": "30.0"}]


def test_a_list_of_two_loggers_writes_both(tmp_path):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    run_dir, _ = train(tmp_path, "logger=[tensorboard,csv]")
    assert (run_dir / "metrics.csv").is_file()
    events = event_accumulator.EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    losses = [(e.step, e.value) for e in events.Scalars("loss/D")]
    expected = [(r["step"], r["loss/D"]) for r in jsonl(run_dir)]
    assert [s for s, _ in losses] == [s for s, _ in expected] == [2, 4, 6]
    assert [v for _, v in losses] == pytest.approx([v for _, v in expected])


@pytest.mark.parametrize("choice", ["logger=none", "logger=[]"])
def test_logger_none_or_an_empty_list_writes_metrics_jsonl_only(tmp_path, choice):
    run_dir, _ = train(tmp_path, choice)
    assert len(jsonl(run_dir)) == 3
    assert not (run_dir / "tb").exists() and not (run_dir / "metrics.csv").exists()


def test_a_config_saved_before_the_logger_group_means_what_trainer_tensorboard_said():
    assert logger_specs({"trainer": {"tensorboard": False}}) == {}
    assert logger_specs({"trainer": {"tensorboard": "auto"}}) == {"tensorboard": {}}
    assert logger_specs({"trainer": {"tensorboard": "auto"}, "logger": {}}) == {}  # logger=none


class Broken(Logger):
    """A backend whose server went away after the run started (or, with at='start', before)."""

    name = "broken"

    def __init__(self, at: str = "log"):
        self.at, self.closed = at, None

    def start(self, run_dir, config, resume_step):
        if self.at == "start":
            raise ConnectionError("no server at localhost:5000")

    def log(self, step, scalars):
        raise ConnectionError("server gone")

    def close(self, status):
        self.closed = status


def test_a_logger_that_fails_mid_run_is_reported_and_dropped_and_training_goes_on(tmp_path):
    config = plain_config(compose_train([*TINY_OVERRIDES, "logger=csv"]))
    trainer = build_trainer(config, tmp_path / "run")
    broken = Broken()
    trainer.loggers.insert(0, broken)
    summary = trainer.fit()
    assert summary["status"] == "finished" and summary["step"] == 6
    assert summary["logger_errors"] == ["logger 'broken' failed at step 2 (log): ConnectionError: server gone"]
    assert broken.closed == "failed"
    assert [r["step"] for r in jsonl(tmp_path / "run")] == [2, 4, 6]  # metrics.jsonl and the other logger go on
    assert len((tmp_path / "run" / "metrics.csv").read_text().splitlines()) == 4


def test_a_logger_that_cannot_start_stops_the_run_before_its_first_step(tmp_path):
    config = plain_config(compose_train(TINY_OVERRIDES))
    trainer = build_trainer(config, tmp_path / "run")
    trainer.loggers = [Broken(at="start")]
    with pytest.raises(GanError, match=r"logger=broken could not start: ConnectionError: no server"):
        trainer.fit()
    assert trainer.step == 0


# ------------------------------------------------------------------------------- mistakes, before any work


def test_a_missing_extra_names_it_before_any_work(tmp_path, monkeypatch):
    register_resolvers()
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` now fails as if it were not installed
    with pytest.raises(GanError, match=r"pip install 'gancli\[mlflow\]'"):
        validate_overrides("train", [*TINY_OVERRIDES, "logger=[csv,mlflow]"])
    config = plain_config(compose_train([*TINY_OVERRIDES, "logger=mlflow"]))
    with pytest.raises(GanError, match=r"logger=mlflow needs the mlflow package"):
        build_trainer(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "overrides, must_say",
    [
        (["logger=[csv,nope]"], "unknown logger 'nope'; choose one of: csv, mlflow, none, tensorboard, wandb."),
        (["logger=nope"], "unknown logger 'nope'; choose one of: csv, mlflow, none, tensorboard, wandb."),
        (["logger=null"], "choose one of its options (csv, mlflow, none, tensorboard, wandb)"),
        (["trainer.tensorboard=false"], "trainer.tensorboard was replaced by the logger config group"),
        (["logger=wandb", "logger.wandb.mode=sometimes"], "logger.wandb.mode takes one of: offline, online, disabled"),
        (["logger=mlflow", "logger.mlflow.expriment=x"], "Keys under 'logger.mlflow': experiment, run_name"),
    ],
)
def test_logger_mistakes_are_one_message(overrides, must_say):
    register_resolvers()
    with pytest.raises(GanError) as err:
        validate_overrides("train", overrides)
    assert must_say in str(err.value)


def test_an_option_a_logger_does_not_take_is_named():
    with pytest.raises(GanError, match=r"logger.csv has no option 'flie'; it takes: file"):
        check_loggers({"logger": {"csv": {"flie": "x.csv"}}})


# ------------------------------------------------------------------------------- mlflow


@pytest.mark.slow
def test_mlflow_records_params_metrics_and_the_final_grid_and_a_resume_continues_its_run(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    run_dir, summary = train(tmp_path, "logger=mlflow")
    saved = json.loads((run_dir / "loggers.json").read_text())["mlflow"]
    assert saved["tracking_uri"] == f"sqlite:///{run_dir.resolve() / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(saved["tracking_uri"])
    run = client.get_run(saved["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "dcgan-shapes"
    params = run.data.params
    assert params["trainer.steps"] == "6" and params["model.name"] == "dcgan" and params["dataset.name"] == "shapes"
    assert params["model.generator.width"] == "8"
    logged = {(r["step"], "loss/D"): r["loss/D"] for r in jsonl(run_dir)}
    history = {(m.step, "loss/D"): m.value for m in client.get_metric_history(saved["run_id"], "loss/D")}
    assert history == pytest.approx(logged)
    artifacts = {a.path for a in client.list_artifacts(saved["run_id"])}
    assert {"final.png", "config.yaml"} <= artifacts
    grid = client.download_artifacts(saved["run_id"], "final.png", str(tmp_path))
    assert Path(grid).read_bytes() == Path(summary["final_grid"]).read_bytes()

    resume_from_step_3(run_dir)
    assert json.loads((run_dir / "loggers.json").read_text())["mlflow"]["run_id"] == saved["run_id"]
    runs = client.search_runs([run.info.experiment_id])
    assert [r.info.run_id for r in runs] == [saved["run_id"]]  # the same run, continued
    assert client.get_run(saved["run_id"]).info.status == "FINISHED"
    again = [(m.step, m.value) for m in client.get_metric_history(saved["run_id"], "loss/D")]
    assert sorted(step for step, _ in again) == [2, 4, 6]  # steps 4 and 6 are not logged a second time
    assert dict(again) == pytest.approx({step: value for (step, _), value in logged.items()})


@pytest.mark.slow
def test_a_sweep_gives_each_job_its_own_mlflow_run(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    sweep = tmp_path / "sweep"
    r = gan(  # a later logger= wins: CLI_TINY's logger=none comes first
        "train",
        "-m",
        *CLI_TINY,
        "trainer.steps=2",
        "seed=0,1",
        "logger=[mlflow,csv]",
        f"logger.mlflow.tracking_uri={uri}",
        "logger.mlflow.experiment=sweep",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("sweep").experiment_id])
    assert sorted(run.data.tags["gancli.run_dir"] for run in runs) == [str(sweep / "0"), str(sweep / "1")]
    assert sorted(run.data.params["seed"] for run in runs) == ["0", "1"]
    assert all((sweep / job / "metrics.csv").is_file() for job in ("0", "1"))
    assert sorted(p.parent.name for p in (tmp_path / "mlartifacts").glob("*/artifacts")) == sorted(
        run.info.run_id for run in runs
    )  # artifacts beside the shared store, not in the folder the sweep started from


# ------------------------------------------------------------------------------- wandb (offline)


def wandb_records(path: Path):
    """The records of an offline run's .wandb file (a LevelDB-style log of wandb's protobuf Records: a 7-byte
    file header, then 32 KiB blocks of chunks, each with a 7-byte header: crc, length, type)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, block, chunks = path.read_bytes(), 7, 32768, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if pos + 7 + length > len(data):  # a chunk the service is still writing
            return
        chunks += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = pb.Record()
            record.ParseFromString(chunks)
            yield record
            chunks = b""


def history(records: list) -> list[dict]:
    """The history rows (one per step) of a run's records; a key with a slash (loss/D) is stored as its parts."""
    return [
        {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
        for r in records
        if r.HasField("history")
    ]


def finished_wandb_records(path: Path, patience: float = 60.0) -> list:
    """The records once wandb's service has written them all (it writes after run.finish() returns)."""
    from google.protobuf.message import DecodeError

    deadline = time.monotonic() + patience
    while True:
        try:
            records = list(wandb_records(path))
        except DecodeError:  # read while a record was half written: not finished yet
            records = []
        if (records and records[-1].WhichOneof("record_type") == "exit") or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


@pytest.mark.slow
def test_wandb_offline_records_the_config_metrics_and_final_grid_and_a_resume_keeps_the_id(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    for var in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home"))
    monkeypatch.delenv("WANDB_MODE", raising=False)

    run_dir, _ = train(tmp_path, "logger=wandb")
    run_id = json.loads((run_dir / "loggers.json").read_text())["wandb"]["id"]
    (offline,) = (run_dir / "wandb").glob(f"offline-run-*-{run_id}")
    records = finished_wandb_records(offline / f"run-{run_id}.wandb")
    kinds = [r.WhichOneof("record_type") for r in records]
    assert kinds.count("run") == 1 and kinds[-1] == "exit", kinds
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["trainer"]["steps"] == 6 and config["model"]["name"] == "dcgan" and run.display_name == "dcgan-shapes"
    rows = history(records)
    logged = {(r["_step"], "loss/D"): r["loss/D"] for r in rows if "loss/D" in r}
    assert logged == pytest.approx({(r["step"], "loss/D"): r["loss/D"] for r in jsonl(run_dir)})
    grid_rows = [r for r in rows if "final_grid/path" in r]
    assert [r["_step"] for r in grid_rows] == [6]
    assert list((offline / "files" / "media" / "images").glob("final_grid_6_*.png"))

    resume_from_step_3(run_dir)
    assert json.loads((run_dir / "loggers.json").read_text())["wandb"]["id"] == run_id
    latest = (run_dir / "wandb" / "latest-run").resolve()  # offline, each process writes a folder of its own
    assert latest != offline.resolve()
    resumed = finished_wandb_records(latest / f"run-{run_id}.wandb")
    assert [r.run.run_id for r in resumed if r.HasField("run")] == [run_id]
    assert [row["_step"] for row in history(resumed) if "loss/D" in row] == [4, 6]
