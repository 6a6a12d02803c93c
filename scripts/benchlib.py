"""What the benchmark scripts share: compose a run exactly as `gan train` would, train it in-process, and
print their tables. (What they measure with lives in gancli.metrics.)"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch

from gancli.cli.app import as_user_error, conf_dir, print_error, register_resolvers, validate_overrides
from gancli.core.checkpoint import load_checkpoint
from gancli.core.errors import GanError
from gancli.data.base import build_dataset
from gancli.training.loggers.base import flatten
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


def train(overrides: list[str], run_dir: Path, resume: bool = False):
    """Trains one run in-process; returns (trainer, seconds). The run dir gets grids and checkpoints. With
    `resume`, a run already in run_dir continues where it stopped (see `continue_run`) and the seconds are
    those of the whole run (kept in <run_dir>/bench_seconds)."""
    config = plain_config(compose([*QUIET, *overrides]))
    trainer = build_trainer(config, Path(run_dir))
    clock = Path(run_dir) / "bench_seconds"
    continued = resume and continue_run(trainer, config, Path(run_dir))
    before = float(clock.read_text()) if continued and clock.exists() else 0.0  # none if killed before it was written
    t0 = time.perf_counter()
    summary = trainer.fit()
    seconds = before + time.perf_counter() - t0
    if resume:
        clock.write_text(f"{seconds:.1f}")
    if summary["status"] != "finished":  # a signal ends training gracefully; a short run is no measurement
        again = " The same command continues it." if resume else ""
        raise GanError(
            f"the run stopped at step {summary['step']} of {summary['steps']} ({summary['status']}); "
            f"a benchmark scores only runs that finished, so nothing of it is reported.{again}"
        )
    trainer.algorithm.train_mode(False)
    return trainer, seconds


def continue_run(trainer, config: dict, run_dir: Path) -> bool:
    """Loads the run in run_dir (checkpoints/last.pt) into `trainer`, which was built from `config`, so that
    it continues exactly where it stopped; False when there is none. A run of other settings is refused by
    key, except a shorter one at a constant rate (`extends`)."""
    last = run_dir / "checkpoints" / "last.pt"
    if not last.exists():
        return False
    state = load_checkpoint(last)
    differ = changed_keys({**state["config"], "resume": None}, {**config, "resume": None})
    differ = without_new_keys_at_default(differ, state["config"], config)
    if differ and not extends(state["config"], config, differ):
        raise GanError(
            f"{run_dir} holds a run with other settings ({', '.join(differ)}); give this benchmark another "
            "--runs folder."
        )
    trainer.load_state_dict(state)
    return True


def without_new_keys_at_default(differ: list[str], old: dict, new: dict) -> list[str]:
    """`differ` less the keys gancli gained after the run was saved that are at their default value: the old run
    ran as if they had been set so (a new key's default keeps the old behaviour), so they are no other settings.
    The defaults are composed once, and only when some key is missing from the old run."""
    flat_old = flatten(old)
    added = [key for key in differ if key not in flat_old]
    if not added:
        return differ
    defaults, flat_new = flatten(plain_config(compose(QUIET))), flatten(new)
    kept = {key for key in added if key in defaults and flat_new.get(key) == defaults[key]}
    return [key for key in differ if key not in kept]


def extends(old: dict, new: dict, differ: list[str]) -> bool:
    """A longer run may continue a shorter one when only its length differs and no learning-rate schedule
    reads that length: its first steps are then those of a run made this long (as `gan train resume=<run>
    trainer.steps=N` continues one)."""
    schedules = {o.get("lr_schedule", "constant") for o in (old["optimizer"], new["optimizer"])}
    longer = new["trainer"]["steps"] > old["trainer"]["steps"]
    return differ == ["trainer.steps"] and longer and schedules == {"constant"}


def changed_keys(a: dict, b: dict) -> list[str]:
    """The dotted keys whose values differ between two plain configs (flattened as the MLflow params are)."""
    flat_a, flat_b = flatten(a), flatten(b)
    return sorted(key for key in flat_a.keys() | flat_b.keys() if flat_a.get(key) != flat_b.get(key))


def curve(overrides: list[str], run_dir: Path, points: list[int], score, table, steps_per_point=None) -> dict:
    """Trains one run to the last of `points`; at each of them (in eval mode, on a fork of the random state)
    score(trainer, point, seconds, memo) gives the table's row. A point is `steps_per_point(cfg)` steps (an
    epoch) or, without it, one step. Rows, training seconds and what the score keeps in `memo` (a baseline
    measured once) go to <run_dir>/curve.json as they are made, and the run's checkpoint to
    <run_dir>/checkpoints at each point: the same command on the same run dir continues a curve that was
    stopped (exact resume), rescoring nothing. Returns the memo, as curve.json holds it."""
    cfg = compose([*QUIET, *overrides])
    per_point = steps_per_point(cfg) if steps_per_point else 1
    unit = "epoch" if steps_per_point else "step"
    last = max(points) * per_point
    if last > int(cfg.trainer.steps):  # a run long enough for the last point (a longer one keeps its schedule)
        cfg = compose([*QUIET, *overrides, f"trainer.steps={last}"])
    config, record = plain_config(cfg), run_dir / "curve.json"
    memo = json.loads(record.read_text()) if record.exists() else {"rows": {}, "seconds": 0.0}
    trainer = build_trainer(copy.deepcopy(config), run_dir)
    continue_run(trainer, config, run_dir)
    for point in sorted(set(points)):
        if str(point) in memo["rows"]:
            table.add(*memo["rows"][str(point)])
            continue
        target = point * per_point
        if target < trainer.step:
            raise GanError(
                f"{run_dir} has trained past {unit} {point} (step {trainer.step} > {target}); a point before its "
                "checkpoint cannot be scored: give this curve another --runs folder."
            )
        if target > trainer.step:
            t0 = time.perf_counter()
            summary = trainer.fit(stop_after=target)
            memo["seconds"] += time.perf_counter() - t0
            if summary["status"] == "interrupted":  # a signal: the checkpoint is written, the rest waits
                raise GanError(
                    f"the run was interrupted at step {summary['step']}; the curve stops before {unit} {point}. "
                    "The same command with the same --runs continues it."
                )
        with torch.random.fork_rng():
            trainer.algorithm.train_mode(False)
            memo["rows"][str(point)] = row = [str(v) for v in score(trainer, point, memo["seconds"], memo)]
        table.add(*row)
        record.parent.mkdir(parents=True, exist_ok=True)  # point 0 is scored before the run writes anything
        tmp = record.with_suffix(".tmp")  # whole or not at all
        tmp.write_text(json.dumps(memo, indent=1))
        tmp.replace(record)
    return memo


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
