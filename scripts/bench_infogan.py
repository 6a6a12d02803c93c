#!/usr/bin/env python
"""InfoGAN on MNIST: does the categorical code discover the digits without labels?

Trains `model=infogan` on images of an MNIST split (labels unused), then lets Q classify images by their
categorical code c1. Each category is mapped to its majority digit on the training images; the score is
the accuracy of that mapping on held-out images (the paper reports 5 % error with its full 60k training
set). The defaults train on the first 8,000 images of the test split and hold out its last 2,000; the
paper's protocol is the second command. Offline, point --root at a folder holding MNIST's IDX files.

    python scripts/bench_infogan.py --root ../shared/data/MNIST/raw
    python scripts/bench_infogan.py --root ../shared/data/MNIST/raw --split train --train 0 60000 \
        --held-out-split test --held-out 0 10000 --seeds 0 1 2 3 4          # the paper's 60k training split
    python scripts/bench_infogan.py --checkpoints bench_runs/infogan-mnist-0/checkpoints/step_*.pt  # a trajectory
"""

from __future__ import annotations

import argparse
from pathlib import Path

import benchlib
import torch

from gancli.core.capabilities import PredictsCodes
from gancli.core.errors import GanError
from gancli.metrics.classes import code_accuracy
from gancli.model import load_for_sampling


def score(
    algo, train: tuple[torch.Tensor, torch.Tensor], held_out: tuple[torch.Tensor, torch.Tensor]
) -> tuple[float, float, int]:
    """(held-out accuracy, train accuracy, digits covered): c1 mapped to the majority digit of the train part
    (gancli.metrics' code_acc, which `gan eval metrics=[code_acc]` reports too)."""
    return code_accuracy(algo, train, held_out, 10)


def cells(held_acc: float, train_acc: float, digits: int) -> list[str]:
    return [f"{100 * held_acc:.1f} %", f"{100 * train_acc:.1f} %", f"{digits}/10"]


def spread(values: list[float]) -> str:
    """A seed sweep's summary: the median, and the range it hides."""
    return benchlib.median_range([100 * v for v in values], "{:.1f}", " %")


def from_checkpoint(path: str, shape: tuple[int, ...]):
    """(the checkpoint's algorithm with D and Q loaded, in eval mode, its step); `shape`: the images'."""
    algo, spec, state = load_for_sampling(path, torch.device("cpu"))
    if not isinstance(algo, PredictsCodes):
        raise GanError(f"{path} was written by model '{state['config']['model']['name']}', not infogan.")
    if tuple(spec["x"].shape) != shape:
        raise GanError(
            f"{path} was trained on {state['config']['dataset']['name']} images of shape "
            f"{tuple(spec['x'].shape)}; this benchmark's MNIST images are {shape}."
        )
    algo.load_state_dict(state, with_optimizers=False, nets=("D",))  # Q lives on D's features
    algo.train_mode(False)
    return algo, int(state["step"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default="../shared/data/MNIST/raw")
    ap.add_argument("--split", default="test")
    ap.add_argument("--train", nargs=2, type=int, default=[0, 8000], metavar=("START", "STOP"))
    ap.add_argument("--held-out", nargs=2, type=int, default=[8000, 10000], metavar=("START", "STOP"))
    ap.add_argument("--held-out-split", help="the split the held-out images come from (default: --split)")
    ap.add_argument("--seeds", nargs="+", default=["0"])
    ap.add_argument(
        "--checkpoints",
        nargs="+",
        default=[],
        help="score these saved checkpoints (e.g. a run's step_*.pt) instead of training",
    )
    ap.add_argument("--runs", default="bench_runs")
    ap.add_argument("--out", help="also write the markdown table here")
    ap.add_argument("overrides", nargs="*", help="extra config overrides, e.g. trainer.steps=5000")
    args = benchlib.parse_args(ap, {"seeds": int, "checkpoints": str})
    root = str(Path(args.root).expanduser().resolve())
    data = ["dataset=mnist", f"dataset.root={root}", f"dataset.split={args.split}", "dataset.download=false"]
    train_part = [*data, f"dataset.subset=[{args.train[0]},{args.train[1]}]"]
    parts = (
        benchlib.labelled_tensors(train_part),
        benchlib.labelled_tensors(
            [
                *data,
                f"dataset.split={args.held_out_split or args.split}",
                f"dataset.subset=[{args.held_out[0]},{args.held_out[1]}]",
            ]
        ),
    )
    columns = ("held-out accuracy (c1 → majority digit)", "train accuracy", "digits covered", "steps")

    if args.checkpoints:
        table = benchlib.Table("checkpoint", *columns)
        for path in args.checkpoints:
            algo, step = from_checkpoint(path, tuple(parts[0][0].shape[1:]))
            table.add(path, *cells(*score(algo, *parts)), step)
        table.write(args.out)
        return
    table = benchlib.Table("seed", *columns, "time (s)")
    results = []
    for seed in args.seeds:
        trainer, seconds = benchlib.train(
            ["model=infogan", *train_part, f"seed={seed}", *args.overrides], Path(args.runs) / f"infogan-mnist-{seed}"
        )
        algo = trainer.algorithm
        for k, m in trainer.sampling_nets().items():  # score with the nets that sample (EMA when on)
            algo.nets[k].load_state_dict(m.state_dict())
        results.append(score(algo, *parts))
        table.add(seed, *cells(*results[-1]), trainer.total, f"{seconds:.0f}")
    if len(results) > 1:  # one run says little: InfoGAN's seeds spread by 20 points (README)
        held, train, digits = zip(*results)
        table.add(
            f"median of {len(results)}",
            spread(list(held)),
            spread(list(train)),
            f"{min(digits)}–{max(digits)}/10",
            "",
            "",
        )
    table.write(args.out)


if __name__ == "__main__":
    benchlib.run(main)
