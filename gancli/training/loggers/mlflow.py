"""logger=mlflow: the run as an MLflow run — the composed config as params (flattened: trainer.steps, ...) and
as a config.yaml artifact, the scalars as metrics at their step (MLflow's key characters only: D(x) is D_x_),
the final grid as an artifact. By default the tracking store is a SQLite file in the run dir
(<run dir>/mlflow/mlflow.db, artifacts beside it), so nothing is shared or sent anywhere;
`logger.mlflow.tracking_uri` names another (a server, a shared sqlite:/// file). A resumed run continues the
same MLflow run: its id is kept in <run dir>/loggers.json."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

from omegaconf import OmegaConf

from gancli.training.loggers.base import Logger, flatten, read_state, register, write_state

log = logging.getLogger("gancli")

STATUS = {"finished": "FINISHED", "stopped": "FINISHED", "interrupted": "KILLED", "failed": "FAILED"}
BATCH = 100  # params per request (MLflow's own limit)
QUEUED = 64  # asynchronous metric writes in flight before the oldest half is waited for


def _key(key: str) -> str:
    """MLflow keys take letters, digits and _-. :/ only."""
    return re.sub(r"[^\w\-. :/]", "_", key)[:250]


def _text(v) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _artifact_root(uri: str | None, store: Path) -> str | None:
    """Where a new experiment keeps its artifacts: beside a SQLite store (MLflow's own default is ./mlruns in
    whatever folder the run starts from); a server's or another store's choice otherwise."""
    if uri is None:
        return (store / "artifacts").as_uri()
    if uri.startswith("sqlite:///") and uri != "sqlite:///:memory:":
        return (Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts").as_uri()
    return None


@register
class MlflowLogger(Logger):
    name, requires, extra = "mlflow", "mlflow", "mlflow"
    config_rules = {
        "tracking_uri": (
            "an MLflow tracking URI (or null: a SQLite store in the run dir)",
            lambda v: v is None or _text(v),
        ),
        "experiment": ("a non-empty name", _text),
        "run_name": ("a name (or null: <model>-<dataset>)", lambda v: v is None or _text(v)),
    }

    def __init__(self, tracking_uri: str | None = None, experiment: str = "gancli", run_name: str | None = None):
        self.tracking_uri, self.experiment, self.run_name = tracking_uri, experiment, run_name
        self.client, self.run_id, self.pending = None, None, []
        self.logged_until: int | None = None  # steps up to here are in the store already (a resumed run)

    def start(self, run_dir: Path, config: dict, resume_step: int | None) -> None:
        from mlflow.tracking import MlflowClient

        run_dir = Path(run_dir)
        store = run_dir.resolve() / "mlflow"
        if self.tracking_uri is None:
            store.mkdir(parents=True, exist_ok=True)
        uri = self.tracking_uri or f"sqlite:///{store / 'mlflow.db'}"
        self.client = MlflowClient(tracking_uri=uri)
        saved = read_state(run_dir).get("mlflow", {}).get("run_id")
        if resume_step is not None and saved and self._exists(saved):
            self.run_id = saved  # params stay those it started with (MLflow's cannot change)
            self.client.update_run(saved, status="RUNNING")
            self.logged_until = self._last_step(saved)
        else:
            experiment = self._experiment(_artifact_root(self.tracking_uri, store))
            model, data = config.get("model", {}).get("name", "gan"), config.get("dataset", {}).get("name", "data")
            run = self.client.create_run(
                experiment, run_name=self.run_name or f"{model}-{data}", tags={"gancli.run_dir": str(run_dir.resolve())}
            )
            self.run_id = run.info.run_id
            write_state(run_dir, "mlflow", {"run_id": self.run_id, "tracking_uri": uri})
            self._log_params(config)
        # the config this process trains (a resume may extend trainer.steps): replaces an earlier one
        self.client.log_text(self.run_id, OmegaConf.to_yaml(OmegaConf.create(config)), "config.yaml")

    def _last_step(self, run_id: str) -> int | None:
        """The last step the run logged: after a crash it can be past the checkpoint a resume starts from."""
        keys = self.client.get_run(run_id).data.metrics
        steps = [m.step for key in keys for m in self.client.get_metric_history(run_id, key)]
        return max(steps, default=None)

    def _exists(self, run_id: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_run(run_id)
            return True
        except MlflowException:
            log.warning("logger=mlflow: run %s is not in this tracking store; starting a new MLflow run", run_id)
            return False

    def _experiment(self, artifacts: str | None) -> str:
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(self.experiment, artifact_location=artifacts)
        except MlflowException:  # a parallel job of the sweep created it first
            found = self.client.get_experiment_by_name(self.experiment)
            if found is None:
                raise
            return found.experiment_id

    def _log_params(self, config: dict) -> None:
        from mlflow.entities import Param

        try:
            from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH as longest
        except ImportError:
            longest = 500
        params = [Param(_key(k), str(v)[:longest]) for k, v in flatten(config).items()]
        for i in range(0, len(params), BATCH):
            self.client.log_batch(self.run_id, params=params[i : i + BATCH])

    def log(self, step: int, scalars: dict[str, float]) -> None:
        """Queued (MLflow's asynchronous logging): the loop does not wait for the store, which takes tens of
        milliseconds a call; a failed write surfaces at a later call or at the end."""
        from mlflow.entities import Metric

        if self.logged_until is not None and step <= self.logged_until:
            return  # logged before a crash; MLflow would keep both points (an exact resume repeats the values)
        now = int(time.time() * 1000)
        metrics = [Metric(_key(k), float(v), now, step) for k, v in scalars.items()]
        self.pending.append(self.client.log_batch(self.run_id, metrics=metrics, synchronous=False))
        if len(self.pending) > QUEUED:
            self._wait(QUEUED // 2)

    def _wait(self, count: int | None = None) -> None:
        """Wait for the oldest `count` queued writes (all by default); raises the first that failed."""
        done, self.pending = self.pending[:count], self.pending[len(self.pending[:count]) :]
        for operations in done:
            operations.wait()

    def finish(self, summary: dict) -> None:
        self._wait()
        grid = summary.get("final_grid")
        if grid and Path(grid).is_file():
            self.client.log_artifact(self.run_id, str(grid))

    def close(self, status: str) -> None:
        if self.run_id is None:
            return
        try:
            self._wait()
        finally:
            self.client.set_terminated(self.run_id, status=STATUS.get(status, "FINISHED"))
            self.run_id = None
