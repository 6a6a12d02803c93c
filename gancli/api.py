"""gancli from Python: the functions `import gancli` offers (`gancli.load`, `gancli.train`, `gancli.evaluate`).

They are the commands without the shell: `train` composes the same config `gan train` composes from the
same overrides (Hydra's compose API, the same checks before any work) and runs the same training code;
`evaluate` is `gan eval`, `export` is `gan export`; `load` gives the model object `gan sample`, `gan encode`
and `gan translate` use.
Errors are `gancli.GanError` with the message the command would print.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gancli.core.errors import GanError
from gancli.model import Model, load

__all__ = ["Model", "TrainResult", "evaluate", "export", "load", "train"]


@dataclass(frozen=True)
class TrainResult:
    """Where a run went and how it ended (the summary.json `gan train` writes: status, step, metrics, ...)."""

    run_dir: Path
    summary: dict

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / "checkpoints" / "last.pt"


def _compose(config_name: str, overrides: Sequence[str]):
    from gancli.cli.app import register_resolvers, validate_overrides

    register_resolvers()
    configs = validate_overrides(config_name, list(overrides))
    if len(configs) != 1:
        raise GanError(
            f"overrides {' '.join(overrides)} describe a sweep; gancli.{config_name.removeprefix('gan_')} runs one "
            f"config (a sweep is `gan train -m ...`, or a loop over calls)."
        )
    return configs[0]


def _default_run_dir(overrides: Sequence[str]) -> Path:
    """hydra.run.dir as `gan train` would resolve it (outputs/<date>/<time>-<uid> unless overridden)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from gancli.cli.app import conf_dir

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            hc = compose(config_name="train", overrides=list(overrides), return_hydra_config=True).hydra
            return Path(str(hc.run.dir)).expanduser()
    finally:
        GlobalHydra.instance().clear()


@contextlib.contextmanager
def _train_log(run_dir: Path) -> Iterator[None]:
    """The run's train.log, as `gan train` keeps one (Hydra's logging is not set up by the compose API)."""
    logger = logging.getLogger("gancli")
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(levelname)s] %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        handler.close()


def train(overrides: Sequence[str] = (), run_dir: str | Path | None = None) -> TrainResult:
    """Train one run from `gan train`'s overrides (["model=wgan_gp", "trainer.steps=2000"], or
    ["resume=<run dir>"] to continue one), in this process; returns its run dir and summary.
    run_dir: where it goes (default: hydra.run.dir, as `gan train` resolves it)."""
    from gancli.cli.app import write_summary
    from gancli.cli.train import check_resume_overrides
    from gancli.training.run import train as train_run

    overrides = [str(o) for o in overrides]
    cfg = _compose("train", overrides)
    if cfg.get("resume"):
        check_resume_overrides(overrides)
        run_dir = Path(str(cfg.resume)).expanduser()
        if not (run_dir / "checkpoints" / "last.pt").is_file():
            raise GanError(f"cannot resume '{run_dir}': no checkpoints/last.pt there.")
    run_dir = Path(run_dir).expanduser() if run_dir is not None else _default_run_dir(overrides)
    with _train_log(run_dir):
        summary = train_run(cfg, run_dir=run_dir, overrides=overrides)
    write_summary(run_dir, summary)
    return TrainResult(run_dir, summary)


def _override(key: str, value: Any) -> str:
    """A Python value as a Hydra override: lists as [a,b], None as null, booleans lowercase."""
    if isinstance(value, (list, tuple)):
        return f"{key}=[{','.join(_override('', v)[1:] for v in value)}]"
    if value is None:
        return f"{key}=null"
    if isinstance(value, bool):
        return f"{key}={str(value).lower()}"
    return f"{key}={value}"


def evaluate(overrides: Sequence[str] = (), quiet: bool = False, **keys: Any) -> dict:
    """`gan eval` in this process: evaluate(ckpt="<run>", metrics=["fid", "kid"]) or the same as overrides;
    returns the report `gan eval` writes (its json: values, floors, protocol), and writes it as well.
    quiet: no table on the terminal (a script that reports the values itself)."""
    from gancli.commands.evaluate import eval_from_config

    cfg = _compose("gan_eval", [*map(str, overrides), *(_override(k, v) for k, v in keys.items())])
    return eval_from_config(cfg, show=not quiet).to_plain()


def export(model: Model | str | Path, format: str = "torchscript", out: str | Path | None = None, **options) -> Path:
    """`gan export`: the sampling network of a loaded model (on the CPU) or of a run dir / checkpoint as one
    standalone TorchScript or ONNX file, its contract beside it (<out>.json); returns the file's path."""
    from gancli.commands.export import export_model

    if not isinstance(model, Model):
        model = load(model, device="cpu")
    return export_model(model, format, out, **options)
