"""What the benchmark scripts share: compose a run exactly as `gan train` would, train it in-process, and
print their tables. (What they measure with lives in gancli.metrics.)"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from gancli.cli.app import as_user_error, conf_dir, print_error, register_resolvers, validate_overrides
from gancli.core.errors import GanError
from gancli.data.base import build_dataset
from gancli.training.run import build_trainer, plain_config

QUIET = ["trainer.progress=false", "logger=none"]


def parse_args(ap: argparse.ArgumentParser, lists: dict[str, str | type]) -> argparse.Namespace:
    """ap.parse_args(), then two repairs. A list option swallows the overrides that follow it
    (`--models acgan trainer.steps=10` reads as two models), so values with '=' go back to the
    overrides. Then each list is checked: names of a preset list (option → conf group, a str) must
    exist, so a typo fails here, not after an hour of training the names before it; values of a
    typed list (option → type, e.g. int for seeds) are converted. Declare the lists without `type=`,
    or argparse rejects an override before the repair."""
    args = ap.parse_args()
    for option, kind in lists.items():
        values = getattr(args, option)
        args.overrides = [*(v for v in values if "=" in v), *args.overrides]
        values = [v for v in values if "=" not in v]
        if isinstance(kind, str):
            known = sorted(f.stem for f in (conf_dir() / kind).glob("*.yaml"))
            unknown = [v for v in values if v not in known]
            if unknown:
                ap.error(f"--{option}: no {kind} preset named {', '.join(unknown)}; choices: {', '.join(known)}")
        else:
            try:
                values = [kind(v) for v in values]
            except ValueError:
                what = {int: "integers", float: "numbers"}.get(kind, f"{kind.__name__} values")
                ap.error(f"--{option} takes {what}, got: {' '.join(values)}")
        setattr(args, option, values)
    return args


def median_range(values: list[float], fmt: str = "{:.1f}", unit: str = "") -> str:
    """A seed sweep's cell: the median, and (over several seeds) the range it hides: "86.7 % (75.8–88.2)"."""
    med = fmt.format(statistics.median(values)) + unit
    return med if len(values) == 1 else f"{med} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def run(main) -> None:
    """Calls main(); a user's error (bad override, missing data, foreign checkpoint, full disk) ends the
    script with its one-paragraph message and exit code, as `gan` does, instead of a traceback."""
    try:
        main()
    except Exception as exc:
        error = as_user_error(exc)
        if error is None:  # a bug: keep the traceback
            raise
        print_error(str(error))
        raise SystemExit(error.exit_code) from None


def compose(overrides: list[str]):
    """The run spec `gan train` would compose; a typo gets the message `gan train` gives, not Hydra's traceback."""
    register_resolvers()
    configs = validate_overrides("train", list(overrides))
    if len(configs) != 1:
        raise GanError("a benchmark trains one config: sweeps (key=a,b) belong to `gan train -m`.")
    return configs[0]


def train(overrides: list[str], run_dir: Path):
    """Trains one run in-process; returns (trainer, seconds). The run dir gets grids and checkpoints."""
    trainer = build_trainer(plain_config(compose([*QUIET, *overrides])), Path(run_dir))
    t0 = time.perf_counter()
    summary = trainer.fit()
    seconds = time.perf_counter() - t0
    if summary["status"] != "finished":  # a signal ends training gracefully; a short run is no measurement
        raise GanError(
            f"the run stopped at step {summary['step']} of {summary['steps']} ({summary['status']}); "
            "a benchmark scores only runs that finished, so nothing of it is reported."
        )
    trainer.algorithm.train_mode(False)
    return trainer, seconds


def build_only(overrides: list[str], run_dir: Path):
    """The run's algorithm as it starts (freshly initialised, nothing trained), in eval mode: baselines."""
    trainer = build_trainer(plain_config(compose([*QUIET, *overrides])), Path(run_dir))
    trainer.algorithm.train_mode(False)
    return trainer.algorithm


def labelled_tensors(dataset_overrides: list[str], n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(images in [-1, 1], labels) of a labelled dataset config, on the CPU, in a fixed shuffled order."""
    cfg = compose(dataset_overrides)
    source = build_dataset(cfg.dataset)
    size = source.stream(1, torch.device("cpu"), 0).n
    batch = next(source.stream(size, torch.device("cpu"), 0))  # one batch = every sample exactly once
    return batch["x"][:n], batch["y"][:n]


class Table:
    """A markdown table printed row by row as results arrive, and written to a file at the end. The
    header waits for the first row, so a run that fails before any result prints only its error."""

    def __init__(self, *columns: str):
        self.lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]

    def add(self, *cells) -> None:
        self.lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        print("\n".join(self.lines if len(self.lines) == 3 else self.lines[-1:]), flush=True)

    def write(self, path: str | None) -> None:
        if path:
            Path(path).write_text("\n".join(self.lines) + "\n")
