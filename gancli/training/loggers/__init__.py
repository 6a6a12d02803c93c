"""The run's loggers (the `logger` config group): where scalars go beside metrics.jsonl. One module per
backend (tensorboard, csv, mlflow, wandb) behind base.Logger, registered in LOGGERS by name."""

from __future__ import annotations

import inspect

from gancli.core.errors import GanError
from gancli.core.rules import check, describe, rules
from gancli.training.loggers import csv, mlflow, tensorboard, wandb  # noqa: F401  (they register themselves)
from gancli.training.loggers.base import LOGGERS, Logger


def logger_specs(config: dict) -> dict[str, dict]:
    """name → options of the run's loggers. A config saved before the logger group existed (no `logger`
    key) means what its trainer.tensorboard said: TensorBoard when installed, or nothing."""
    if "logger" in config:
        return dict(config["logger"] or {})
    old = str(config.get("trainer", {}).get("tensorboard", "false")).lower()
    return {"tensorboard": {}} if old in ("auto", "true") else {}


def check_loggers(config: dict) -> None:
    """Each chosen logger exists, takes the options given and has its backend installed: one GanError
    before any work."""
    for name, options in logger_specs(config).items():
        cls = LOGGERS.get(str(name))
        where = f"logger.{name}"
        if options is not None and not isinstance(options, dict):
            raise GanError(f"{where} holds the logger's options (key: value), not {options!r}.")
        accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        unknown = sorted(set(options or {}) - set(accepted))
        if unknown:
            raise GanError(f"{where} has no option '{unknown[0]}'; it takes: {', '.join(accepted) or 'none'}.")
        check(config, rules(cls.config_rules, where + "."))
        cls.require()


def build_loggers(config: dict) -> list[Logger]:
    """The run's loggers, checked (check_loggers) and built; none is started yet."""
    check_loggers(config)
    return [LOGGERS.get(str(name))(**(options or {})) for name, options in logger_specs(config).items()]


def logger_rules_text() -> str:
    """The loggers' value rules, for --help."""
    return describe([r for name, cls in LOGGERS.items() for r in rules(cls.config_rules, f"logger.{name}.")])
