"""What a logger is: a backend that receives the run's scalars beside metrics.jsonl (which is always written),
chosen with the `logger` config group. The one place scalars are logged (training/metrics_log.py) calls it;
under torchrun only rank 0 builds any.

A logger is named by its key under `logger:` in the config (`logger.mlflow.*`), registered in LOGGERS under
that name, and built with the key's values as keyword arguments. Its optional backend is a pyproject extra,
refused before any work when missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from gancli.core.errors import GanError
from gancli.core.registry import Registry

STATE_FILE = "loggers.json"  # in the run dir: what a resumed run needs to continue the same runs (their ids)


class Logger:
    """Override what the backend needs. `name` is its key under `logger:` (and its conf/logger/<name>.yaml),
    `requires` the module the backend imports and `extra` the pyproject extra that installs it;
    `config_rules` the values its keys take (gancli.core.rules)."""

    name = ""
    requires: str | None = None
    extra: str | None = None
    config_rules: dict[str, tuple] = {}

    def start(self, run_dir: Path, config: dict, resume_step: int | None) -> None:
        """Before the first step of this process; resume_step: the step a resumed run continues from (None:
        a new run). Nothing logged after it by an earlier process should survive where the backend can forget."""

    def log(self, step: int, scalars: dict[str, float]) -> None:
        pass

    def rewind(self, step: int) -> None:
        """Forget what was logged after `step` where the backend can (trainer.nan=skip restored a checkpoint)."""

    def finish(self, summary: dict) -> None:
        """A finished run's final outputs: summary['final_grid'] (the run's summary, as `gan train` reports it)."""

    def close(self, status: str) -> None:
        """Always called last: status is finished, stopped, interrupted or failed."""

    @classmethod
    def require(cls) -> None:
        """Refuse, in one paragraph naming the extra, a backend that is not installed."""
        if cls.requires is not None and not _importable(cls.requires):
            raise GanError(
                f"logger={cls.name} needs the {cls.requires} package, which is not installed: "
                f"pip install 'gancli[{cls.extra}]' (or pip install {cls.requires}), then train again; "
                f"or choose another logger (logger=tensorboard, logger=csv, logger=none)."
            )


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that is missing or half-loaded
        return False


LOGGERS: Registry[type[Logger]] = Registry("logger")


def register(cls: type[Logger]) -> type[Logger]:
    """Class decorator: the logger under its `name` (a plugin's logger too, with its own conf/logger/ file)."""
    return LOGGERS.register(cls.name)(cls)


def read_state(run_dir: Path) -> dict:
    path = Path(run_dir) / STATE_FILE
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:  # a file cut by a crash: the backends start new runs
        return {}


def write_state(run_dir: Path, name: str, value: dict) -> None:
    """Remember `value` under the logger's name in <run dir>/loggers.json (atomically)."""
    state = {**read_state(run_dir), name: value}
    path = Path(run_dir) / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, path)


def flatten(config: dict, prefix: str = "") -> dict[str, object]:
    """{'trainer': {'steps': 6}} → {'trainer.steps': 6}; lists stay values (what a params table holds)."""
    out: dict[str, object] = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out
