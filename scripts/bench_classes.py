#!/usr/bin/env python
"""Do class-conditional models draw the class they are asked for?

For each dataset: train a small CNN classifier on real data (its accuracy on held-out real data is
the ceiling), train each conditional preset with the dataset's defaults, draw `--per-class` samples of
every class, and report the classifier's accuracy on them (overall and worst class).

    python scripts/bench_classes.py                                   # cdcgan and acgan on shapes
    python scripts/bench_classes.py --datasets shapes fashion_mnist --out classes.md
    python scripts/bench_classes.py --models acgan trainer.steps=4000        # overrides may follow the lists
"""

from __future__ import annotations

import argparse
from pathlib import Path

import benchlib
import torch

from gancli.metrics.features import fit_classifier, predict

HELD_OUT = {  # real data the classifier is scored on: never seen in its training
    "shapes": ["dataset.seed=4321", "dataset.n=4000"],
    "fashion_mnist": ["dataset.split=test"],
    "mnist": ["dataset.split=test"],
    "cifar10": ["dataset.split=test"],
}


def evaluate(trainer, classifier, num_classes: int, per_class: int, seed: int = 0) -> tuple[float, list[float]]:
    algo, gen = trainer.algorithm, torch.Generator().manual_seed(10_000 + seed)
    accs = []
    for k in range(num_classes):
        inputs = algo.sample_inputs(per_class, gen, torch.full((per_class,), k, dtype=torch.long))
        x = algo.generate(inputs, trainer.sampling_nets()).cpu()
        accs.append((predict(classifier, x) == k).float().mean().item())
    return sum(accs) / len(accs), accs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["cdcgan", "acgan"])
    ap.add_argument("--datasets", nargs="+", default=["shapes"])
    ap.add_argument("--per-class", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--classifier-epochs", type=int, default=3)
    ap.add_argument("--runs", default="bench_runs", help="run dirs (grids, checkpoints) go here")
    ap.add_argument("--out", help="also write the markdown table here")
    ap.add_argument("overrides", nargs="*", help="extra config overrides for every run, e.g. trainer.steps=2000")
    args = benchlib.parse_args(ap, {"models": "model", "datasets": "dataset"})

    table = benchlib.Table(
        "model", "dataset", "class accuracy of samples", "worst class", "real held-out accuracy", "steps", "time (s)"
    )
    for dataset in args.datasets:
        x, y = benchlib.labelled_tensors([f"dataset={dataset}"])
        num_classes = int(y.max()) + 1
        classifier = fit_classifier(x, y, num_classes, args.classifier_epochs)
        xt, yt = benchlib.labelled_tensors([f"dataset={dataset}", *HELD_OUT.get(dataset, [])])
        real_acc = (predict(classifier, xt) == yt).float().mean().item()
        for model in args.models:
            run_dir = Path(args.runs) / f"{model}-{dataset}-{args.seed}"
            trainer, seconds = benchlib.train(
                [f"model={model}", f"dataset={dataset}", f"seed={args.seed}", *args.overrides], run_dir
            )
            acc, per = evaluate(trainer, classifier, num_classes, args.per_class, args.seed)
            worst = min(range(num_classes), key=per.__getitem__)
            names = trainer.spec["y"].class_names
            table.add(
                model,
                dataset,
                f"{100 * acc:.1f} %",
                f"{names[worst] if names else worst} {100 * per[worst]:.0f} %",
                f"{100 * real_acc:.1f} %",
                trainer.total,
                f"{seconds:.0f}",
            )
    table.write(args.out)


if __name__ == "__main__":
    benchlib.run(main)
