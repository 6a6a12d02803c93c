#!/usr/bin/env python
"""Every image preset for a fixed budget of G steps on a dataset, scored by gancli.metrics: FID, KID,
precision and recall on each feature extractor of --features (default: the classifier's; `inception
classifier` scores the same samples on both), with training speed. Each column names its features. The
floor comes first (real test images scored the same way), then a row per preset as it finishes.

    python scripts/bench_presets.py                                         # shapes, 1000 steps, all presets
    python scripts/bench_presets.py --datasets fashion_mnist --root /usr/share/datasets/fashion-mnist
    python scripts/bench_presets.py --models dcgan hinge --steps 5000 --seeds 0 1 2
    python scripts/bench_presets.py --features inception classifier --n 1000 --reference-n 1000 ...
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import benchlib
import yaml
from omegaconf import OmegaConf

from gancli.cli.app import conf_dir
from gancli.core.device import select_device
from gancli.core.errors import GanError
from gancli.metrics import EvalContext, evaluate, resolve
from gancli.metrics.reference import RealData
from gancli.metrics.suite import model_context

GAN_FAMILY = {"gan", "acgan", "infogan"}  # noise (and a class) → image with the GAN family's networks


def algorithm_of(preset: str) -> str:
    """The algorithm a model preset names, following `defaults:` to the preset it extends."""
    node = yaml.safe_load((conf_dir() / "model" / f"{preset}.yaml").read_text())
    parents = [d for d in node.get("defaults", []) if isinstance(d, str) and d != "_self_"]
    return node.get("algorithm") or algorithm_of(parents[0])


# the other families (sequences, translation, encoders, growing and style-based) have their own benchmarks
IMAGE_PRESETS = sorted(p.stem for p in (conf_dir() / "model").glob("*.yaml") if algorithm_of(p.stem) in GAN_FAMILY)
METRICS = ["fid", "kid", "pr"]


def settings(args, features: str, reference_n: int) -> OmegaConf:
    return OmegaConf.create(
        {
            "metrics": METRICS,
            "n": args.n,
            "features": features,
            "reference_n": reference_n,
            "kid_subsets": 100,
            "kid_subset_size": min(1000, args.n),
            "inception_weights": None,
            "cache_dir": args.cache,
            "classifier_epochs": 3,
            "batch_size": 250,
            "seed": 0,
        }
    )


COLUMNS = (
    ("fid", "FID", "{:.3f}"),
    ("kid", "KID", "{:.4f}"),
    ("precision", "precision", "{:.3f}"),
    ("recall", "recall", "{:.3f}"),
)


def score(samples, real, field_, device, s, shared: dict) -> dict[str, float]:
    """The metrics of `samples` on one extractor; `shared` keeps its network and reference features."""
    ctx = EvalContext(resolve(METRICS), s, field_, real, device, samples=samples, shared=shared)
    return evaluate(ctx, with_floor=False).values


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=IMAGE_PRESETS)
    ap.add_argument("--datasets", nargs="+", default=["shapes"])
    ap.add_argument("--root", help="dataset.root for file-backed datasets (e.g. /usr/share/datasets/fashion-mnist)")
    ap.add_argument("--steps", type=int, default=1000, help="the budget: G steps per run")
    ap.add_argument("--seeds", nargs="+", default=["0"])
    ap.add_argument("--n", type=int, default=5000, help="samples scored per run (and real test images in the floor)")
    ap.add_argument(
        "--reference-n",
        nargs="+",
        default=["50000"],
        help="real training images: one for all, or one per --features",
    )
    ap.add_argument(
        "--features", nargs="+", default=["classifier"], help="extractors (eval.features), one column set each"
    )
    ap.add_argument("--cache", default="~/.cache/gancli")
    ap.add_argument("--out", help="also write the markdown table here")
    ap.add_argument("overrides", nargs="*", help="extra config overrides for every run")
    args = benchlib.parse_args(
        ap, {"models": "model", "datasets": "dataset", "seeds": int, "reference_n": int, "features": str}
    )
    if len(args.reference_n) not in (1, len(args.features)):
        raise GanError(f"--reference-n takes one count, or one per --features ({len(args.features)}).")
    reference_n = dict(
        zip(args.features, args.reference_n * len(args.features) if len(args.reference_n) == 1 else args.reference_n)
    )
    settings_of = {f: settings(args, f, reference_n[f]) for f in args.features}
    for dataset in args.datasets:
        data = [f"dataset={dataset}", *([f"dataset.root={args.root}", "dataset.download=false"] if args.root else [])]
        spec = benchlib.compose([*data, *args.overrides])
        real = {f: RealData(spec.dataset, reference_n[f]) for f in args.features}  # the classifier trains on its part
        device = select_device(str(spec.get("device", "auto")))
        shared: dict[str, dict] = {f: {} for f in args.features}
        first = real[args.features[0]]
        test = first.test.samples[: args.n]
        floor = {f: score(test, real[f], first.train.field, device, settings_of[f], shared[f]) for f in args.features}
        labels = {f: shared[f]["extractor"].label for f in args.features}
        for f in args.features:
            print(f"features {labels[f]}: {shared[f]['extractor'].description}", flush=True)
        table = benchlib.Table(
            "model",
            "dataset",
            *(f"{title} ({labels[f]})" for f in args.features for _, title, _ in COLUMNS),
            "img/s",
            "steps",
        )
        table.add(
            f"floor: {len(test)} real images of {first.test.name}",
            dataset,
            *(fmt.format(floor[f][k]) for f in args.features for k, _, fmt in COLUMNS),
            "",
            "",
        )
        for model in args.models:
            runs = []
            for seed in args.seeds:
                with tempfile.TemporaryDirectory() as tmp:
                    trainer, seconds = benchlib.train(
                        [
                            f"model={model}",
                            *data,
                            f"seed={seed}",
                            f"trainer.steps={args.steps}",
                            "trainer.sample_every=0",
                            "trainer.ckpt_every=0",
                            *args.overrides,
                        ],
                        Path(tmp),
                    )
                    ctx = model_context(
                        trainer.algorithm,
                        trainer.config["dataset"],
                        settings_of[args.features[0]],
                        trainer.device,
                        nets=trainer.sampling_nets(),
                        real=first,
                    )
                    row = {"img/s": trainer.total * trainer.default_batch / seconds}
                    for f in args.features:
                        values = score(ctx.samples, real[f], ctx.field, trainer.device, settings_of[f], shared[f])
                        row.update({f"{k}@{f}": v for k, v in values.items()})
                    runs.append(row)
            cell = lambda k, fmt, runs=runs: benchlib.median_range([r[k] for r in runs], fmt)  # noqa: E731
            table.add(
                model,
                dataset,
                *(cell(f"{k}@{f}", fmt) for f in args.features for k, _, fmt in COLUMNS),
                cell("img/s", "{:.0f}"),
                args.steps,
            )
        table.write(args.out)


if __name__ == "__main__":
    benchlib.run(main)
