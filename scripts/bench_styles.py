#!/usr/bin/env python
"""Progressive and style-based generators against DCGAN for one budget of real images shown to D: FID, KID,
precision and recall on the classifier's features (Inception where its weights are at hand and --features
says so), ProGAN's sliced Wasserstein distance (×10³; no pretrained network), and training speed. The growing
models (progan, stylegan) spread the budget evenly over their stages (stabilise at 4 px, then a fade and a
stabilisation per level). For the style-based models a truncation sweep follows: lowering ψ should raise
precision and lower recall (StyleGAN2-ADA's and Kynkäänniemi et al.'s observation).

    python scripts/bench_styles.py --root /usr/share/datasets/fashion-mnist                 # fashion_mnist, 32 px
    python scripts/bench_styles.py --dataset shapes --resolution 64 --images 64000
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import benchlib
import torch
from omegaconf import OmegaConf

from gancli.metrics import EvalContext, evaluate, resolve
from gancli.metrics.reference import RealData, to_uint8
from gancli.metrics.suite import model_context

METRICS = ["fid", "kid", "pr", "swd"]
GROWING = {"progan", "stylegan"}
STYLE = {"stylegan", "stylegan2"}
# the papers' G averages (StyleGAN2-ADA: a ramp-up of 5 % of the images seen)
EMA = {
    "progan": ["trainer.ema=0.999"],
    "stylegan": ["trainer.ema=0.999"],
    "stylegan2": ["trainer.ema=0.999", "trainer.ema_rampup=0.05"],
}


def settings(args) -> OmegaConf:
    return OmegaConf.create(
        {
            "metrics": METRICS,
            "n": args.n,
            "features": args.features,
            "reference_n": args.reference_n,
            "kid_subsets": 100,
            "kid_subset_size": min(1000, args.n),
            "inception_weights": None,
            "cache_dir": args.cache,
            "classifier_epochs": 3,
            "batch_size": 250,
            "seed": 0,
        }
    )


def budget_overrides(model: str, images: int, batch: int, resolution: int) -> list[str]:
    """Steps for `images` reals; the growing models' stages share them: stabilise at 4 px, then fade +
    stabilise per level, each stage the same number of images."""
    steps = [f"trainer.steps={max(1, images // batch)}"]
    if model in GROWING:
        levels = resolution.bit_length() - 3  # 32 px: 4, 8, 16, 32
        stage = max(1, images // (2 * levels - 1))
        steps += [f"model.fade_images={stage}", f"model.stable_images={stage}"]
    return steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["dcgan", "progan", "stylegan", "stylegan2"])
    ap.add_argument("--dataset", default="fashion_mnist")
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--root", help="dataset.root for file-backed datasets (e.g. /usr/share/datasets/fashion-mnist)")
    ap.add_argument("--images", type=int, default=64000, help="the budget: real images shown to D")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seeds", nargs="+", default=["0"])
    ap.add_argument("--psi", nargs="+", default=["1.0", "0.7", "0.5"])
    ap.add_argument("--n", type=int, default=2000, help="samples scored per run")
    ap.add_argument("--reference-n", type=int, default=10000)
    ap.add_argument("--features", default="classifier")
    ap.add_argument("--cache", default="~/.cache/gancli")
    ap.add_argument("--out", help="also write the markdown table here")
    ap.add_argument("overrides", nargs="*", help="extra config overrides for every run")
    args = benchlib.parse_args(ap, {"models": "model", "seeds": int, "psi": float})
    s = settings(args)
    data = [
        f"dataset={args.dataset}",
        f"dataset.resolution={args.resolution}",
        *([f"dataset.root={args.root}", "dataset.download=false"] if args.root else []),
    ]
    table = benchlib.Table("model", "ψ", "FID", "KID", "precision", "recall", "SWD ×10³", "img/s", "images")
    shared = None
    for model in args.models:
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as tmp:
                trainer, seconds = benchlib.train(
                    [
                        f"model={model}",
                        *data,
                        f"seed={seed}",
                        f"trainer.batch_size={args.batch}",
                        *budget_overrides(model, args.images, args.batch, args.resolution),
                        *EMA.get(model, []),
                        "trainer.sample_every=0",
                        "trainer.ckpt_every=0",
                        *args.overrides,
                    ],
                    Path(tmp),
                )
                speed = trainer.total * trainer.default_batch / seconds
                ctx = model_context(
                    trainer.algorithm,
                    trainer.config["dataset"],
                    s,
                    trainer.device,
                    nets=trainer.sampling_nets(),
                    shared=shared,
                )
                v = evaluate(ctx, with_floor=False).values
                shared = ctx._shared
                table.add(
                    model,
                    "1",
                    f"{v['fid']:.3f}",
                    f"{v['kid']:.4f}",
                    f"{v['precision']:.3f}",
                    f"{v['recall']:.3f}",
                    f"{v['swd']:.1f}",
                    f"{speed:.0f}",
                    args.images,
                )
                if model not in STYLE:
                    continue
                for psi in (p for p in args.psi if p != 1.0):
                    x = trainer.algorithm.sample(
                        {"trunc": psi},
                        args.n,
                        8,
                        torch.Generator().manual_seed(1),
                        250,
                        grid=False,
                        nets=trainer.sampling_nets(),
                    )["samples"].data
                    tctx = EvalContext(
                        resolve(["pr", "swd"]),
                        s,
                        ctx.field,
                        ctx.real,
                        trainer.device,
                        samples=to_uint8(x),
                        shared=shared,
                    )
                    t = evaluate(tctx, with_floor=False).values
                    table.add(
                        model,
                        f"{psi:g}",
                        "",
                        "",
                        f"{t['precision']:.3f}",
                        f"{t['recall']:.3f}",
                        f"{t['swd']:.1f}",
                        "",
                        args.images,
                    )
    real = RealData(benchlib.compose(data).dataset, args.reference_n)
    floor = EvalContext(
        resolve(METRICS),
        OmegaConf.merge(s, {"n": min(args.n, len(real.test.samples))}),
        real.train.field,
        real,
        torch.device("cpu"),
        samples=real.test.samples[: args.n],
        shared=shared,
    )
    v = evaluate(floor, with_floor=False).values
    table.add(
        f"floor: real images of {real.test.name}",
        "",
        f"{v['fid']:.3f}",
        f"{v['kid']:.4f}",
        f"{v['precision']:.3f}",
        f"{v['recall']:.3f}",
        f"{v['swd']:.1f}",
        "",
        "",
    )
    print(f"features: {floor.extractor.label} — {floor.extractor.description}", flush=True)
    table.write(args.out)


if __name__ == "__main__":
    benchlib.run(main)
