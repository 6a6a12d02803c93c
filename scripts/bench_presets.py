#!/usr/bin/env python
"""Every image preset for a fixed budget of G steps on a dataset, scored by gancli.metrics: FID, KID,
precision and recall on the classifier's features (Inception where its weights are at hand and
--features says so), with training speed. The table ends with the floor: real test images scored the
same way.

    python scripts/bench_presets.py                                         # shapes, 1000 steps, all presets
    python scripts/bench_presets.py --datasets fashion_mnist --root /usr/share/datasets/fashion-mnist
    python scripts/bench_presets.py --models dcgan hinge --steps 5000 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import benchlib
import yaml
from omegaconf import OmegaConf

from gancli.cli.app import conf_dir
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


def settings(args) -> OmegaConf:
    return OmegaConf.create(
        {
            "metrics": METRICS,
            "n": args.n,
            "features": args.features,
            "reference_n": args.reference_n,
            "kid_subsets": 100,
            "kid_subset_size": 1000,
            "inception_weights": None,
            "cache_dir": args.cache,
            "classifier_epochs": 3,
            "batch_size": 250,
            "seed": 0,
        }
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=IMAGE_PRESETS)
    ap.add_argument("--datasets", nargs="+", default=["shapes"])
    ap.add_argument("--root", help="dataset.root for file-backed datasets (e.g. /usr/share/datasets/fashion-mnist)")
    ap.add_argument("--steps", type=int, default=1000, help="the budget: G steps per run")
    ap.add_argument("--seeds", nargs="+", default=["0"])
    ap.add_argument("--n", type=int, default=5000, help="samples scored per run")
    ap.add_argument("--reference-n", type=int, default=50000)
    ap.add_argument("--features", default="classifier")
    ap.add_argument("--cache", default="~/.cache/gancli")
    ap.add_argument("--out", help="also write the markdown table here")
    ap.add_argument("overrides", nargs="*", help="extra config overrides for every run")
    args = benchlib.parse_args(ap, {"models": "model", "datasets": "dataset", "seeds": int})
    s = settings(args)
    table = benchlib.Table("model", "dataset", "FID", "KID", "precision", "recall", "img/s", "steps")
    for dataset in args.datasets:
        data = [f"dataset={dataset}", *([f"dataset.root={args.root}", "dataset.download=false"] if args.root else [])]
        features = None
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
                        s,
                        trainer.device,
                        nets=trainer.sampling_nets(),
                        shared=features,
                    )
                    report = evaluate(ctx, with_floor=False)
                    features = ctx._shared
                    runs.append({**report.values, "img/s": trainer.total * trainer.default_batch / seconds})
            cell = lambda k, fmt, runs=runs: benchlib.median_range([r[k] for r in runs], fmt)  # noqa: E731
            table.add(
                model,
                dataset,
                cell("fid", "{:.3f}"),
                cell("kid", "{:.4f}"),
                cell("precision", "{:.3f}"),
                cell("recall", "{:.3f}"),
                cell("img/s", "{:.0f}"),
                args.steps,
            )
        real = RealData(benchlib.compose([*data, *args.overrides]).dataset, args.reference_n)
        floor = EvalContext(
            resolve(METRICS),
            OmegaConf.merge(s, {"n": min(args.n, len(real.test.samples))}),
            real.train.field,
            real,
            trainer.device,
            samples=real.test.samples[: args.n],
            shared=features,
        )
        v = evaluate(floor, with_floor=False).values
        table.add(
            f"floor: real images of {real.test.name}",
            dataset,
            f"{v['fid']:.3f}",
            f"{v['kid']:.4f}",
            f"{v['precision']:.3f}",
            f"{v['recall']:.3f}",
            "",
            "",
        )
        print(f"features: {floor.extractor.description}", flush=True)
    table.write(args.out)


if __name__ == "__main__":
    benchlib.run(main)
