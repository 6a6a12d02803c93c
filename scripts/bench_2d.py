#!/usr/bin/env python
"""Mode coverage on the 2-D mixtures, VEEGAN / PacGAN protocol.

For each model preset and each of ring8 / grid25: train with the preset's defaults (the dataset's step
count), draw 2,500 points, and report
  modes     — modes captured: a mode counts when at least one high-quality sample is nearest to it
  hq        — high-quality samples: within 3σ of the nearest mode centre
  rev KL    — KL(generated mode histogram ‖ uniform), every sample assigned to its nearest mode

    python scripts/bench_2d.py                       # every preset, both datasets, seed 0
    python scripts/bench_2d.py --models gan wgan_gp --seeds 0 1 2 --out bench.md   # median (range) over seeds
    python scripts/bench_2d.py --models pacgan --converge   # trained to convergence (minutes, not one)
    python scripts/bench_2d.py --models wgan_gp --datasets ring8 --seeds 0 1 2 --curve 500 1000 2000 5000 --runs runs/2d

--curve scores one run per seed at each of the given G steps, at a constant learning rate (the schedule of
the authors' toy code, which scripts/ref_wgan_gp_toy.py reproduces with --eval-every), and then gives the
median (range) over seeds at each step; with --runs the runs are kept, and the same command continues one
that was stopped, or extends it to later steps.

--converge approximates the PacGAN paper's setup, which trains a 4×400 generator on a 2-d latent for
400 epochs (400,000 steps), within a CPU budget: the same 2-d latent, a 4×256 G and 3×256 D, and
CONVERGE_UPDATES D updates instead of the datasets' one-minute 12,000.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import benchlib
import torch

from gancli.metrics.points import mode_stats

MODELS = ["gan", "dcgan", "lsgan", "wgan", "wgan_gp", "hinge", "sngan", "pacgan"]
# Precision matters at σ = 0.01: a constant learning rate leaves the generator jittering around the modes.
PROTOCOL = ["optimizer.lr_schedule=linear_decay", "optimizer.lr_decay_start=0.5"]
CONVERGE = [
    "dataset.networks.z_dim=2",
    "dataset.networks.generator.hidden=[256,256,256,256]",
    "dataset.networks.discriminator.hidden=[256,256,256]",
]
CONVERGE_UPDATES = {"ring8": 24_000, "grid25": 60_000}


def converge_overrides(dataset: str) -> list[str]:
    """The --converge networks and budget (in D updates, so n_critic presets get fewer G steps)."""
    return [*CONVERGE, f"dataset.steps='${{floordiv:{CONVERGE_UPDATES[dataset]},${{model.n_critic}}}}'"]


def points(trainer, seed: int, n: int = 2500) -> dict:
    """The protocol's scores of n points drawn from noise seeded 10,000 + seed (the same draw at every point
    of a curve and for every model, scripts/ref_wgan_gp_toy.py's included)."""
    algo = trainer.algorithm
    pts = algo.generate(
        algo.sample_inputs(n, torch.Generator().manual_seed(10_000 + seed)), trainer.sampling_nets()
    ).cpu()
    centres = torch.tensor(trainer.spec["x"].extras["centres"])
    return {**mode_stats(pts, centres, trainer.spec["x"].extras["std"]), "n_modes": len(centres)}


def base(model: str, dataset: str, seed: int) -> list[str]:
    """What every run of this benchmark sets: the preset, the mixture, the seed, no grids."""
    return [f"model={model}", f"dataset={dataset}", f"seed={seed}", "trainer.sample_every=0"]


def run(model: str, dataset: str, seed: int, extra: list[str], n: int = 2500) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        trainer, seconds = benchlib.train(
            [*base(model, dataset, seed), "trainer.ckpt_every=0", *PROTOCOL, *extra], Path(tmp)
        )
        return {**points(trainer, seed, n), "seconds": seconds, "steps": trainer.total}


def curve(model: str, dataset: str, seed: int, extra: list[str], steps: list[int], runs: Path | None, table) -> dict:
    """One run scored at each of `steps` (G steps) at a constant rate, the authors' schedule on the toys (a
    decay would read the run's length); kept and continued in runs/<model>-<dataset>-<seed> when given.
    Returns {step: scores}."""
    over = [*base(model, dataset, seed), *extra]

    def score(trainer, step, seconds, memo):
        r = memo.setdefault("scores", {})[str(step)] = points(trainer, seed)
        return (
            model,
            dataset,
            seed,
            step,
            f"{r['modes']:.0f}/{r['n_modes']}",
            f"{100 * r['hq']:.1f} %",
            f"{r['rev_kl']:.3f}",
            f"{seconds:.0f}",
        )

    with tempfile.TemporaryDirectory() as tmp:
        where = runs / f"{model}-{dataset}-{seed}" if runs else Path(tmp)
        memo = benchlib.curve(over, where, steps, score, table)
    return {int(k): v for k, v in memo["scores"].items() if int(k) in steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--datasets", nargs="+", default=["ring8", "grid25"])
    ap.add_argument("--seeds", nargs="+", default=["0"])
    ap.add_argument("--converge", action="store_true", help="larger nets, 2-d latent, longer training")
    ap.add_argument("--curve", nargs="+", type=int, help="score one run per seed at these G steps, at a constant rate")
    ap.add_argument("--runs", help="with --curve: keep the runs here, so that the same command continues them")
    ap.add_argument("--out", help="also write the markdown table here")
    ap.add_argument("overrides", nargs="*", help="extra config overrides, e.g. trainer.steps=2000")
    args = benchlib.parse_args(ap, {"models": "model", "datasets": "dataset", "seeds": int})
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.curve:
        return curves(args)

    table = benchlib.Table("model", "dataset", "modes", "high quality", "reverse KL", "steps", "time (s)")
    for model in args.models:
        for dataset in args.datasets:
            extra = [*(converge_overrides(dataset) if args.converge else []), *args.overrides]
            rs = [run(model, dataset, s, extra) for s in args.seeds]
            cell = lambda key, fmt, scale=1, unit="", rs=rs: benchlib.median_range(  # noqa: E731
                [scale * r[key] for r in rs], fmt, unit
            )
            table.add(
                model,
                dataset,
                cell("modes", "{:.0f}", unit=f"/{rs[0]['n_modes']}"),
                cell("hq", "{:.1f}", 100, " %"),
                cell("rev_kl", "{:.3f}"),
                rs[0]["steps"],
                cell("seconds", "{:.0f}"),
            )
    table.write(args.out)


def curves(args) -> None:
    """--curve: each seed's rows as they are scored, then the median (range) over seeds at each step."""
    rows = benchlib.Table("model", "dataset", "seed", "G steps", "modes", "high quality", "reverse KL", "time (s)")
    summary = benchlib.Table("model", "dataset", "G steps", "modes", "high quality", "reverse KL", "seeds")
    runs = Path(args.runs).expanduser() if args.runs else None
    for model in args.models:
        for dataset in args.datasets:
            extra = [*(converge_overrides(dataset) if args.converge else []), *args.overrides]
            by_seed = [curve(model, dataset, s, extra, args.curve, runs, rows) for s in args.seeds]
            for step in sorted(set(args.curve)):
                rs = [scores[step] for scores in by_seed]
                summary.add(
                    model,
                    dataset,
                    step,
                    benchlib.median_range([r["modes"] for r in rs], "{:.0f}", f"/{rs[0]['n_modes']}"),
                    benchlib.median_range([100 * r["hq"] for r in rs], "{:.1f}", " %"),
                    benchlib.median_range([r["rev_kl"] for r in rs], "{:.3f}"),
                    len(rs),
                )
    summary.write(args.out)


if __name__ == "__main__":
    benchlib.run(main)
