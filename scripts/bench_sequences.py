#!/usr/bin/env python
"""Sequence GANs against the RGAN paper's measures.

`sines`: train `rgan` on the paper's sines, draw 1,000 sequences, and report MMD² against 1,000 held-out
real ones (and the real-vs-real floor), then fit A·sin(2πf·t/T + φ) to every sequence (least squares over
a grid of f) and report the Kolmogorov–Smirnov distance of the fitted frequencies to U[1, 5] and of the
amplitudes to U[0.1, 0.9], for the samples and for held-out real sequences.

`mnist`: train `rcgan` on MNIST digits as sequences and report TSTR (a 500-tree random forest fitted to
synthetic sequences of each class, scored on the real test split), TRTS and the real-on-real TRTR.

    python scripts/bench_sequences.py --task sines --seeds 0 1 2
    python scripts/bench_sequences.py --task mnist --root ../shared/data/MNIST/raw
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

import benchlib
from gancli.metrics import evaluate
from gancli.metrics.suite import model_context

MNIST = ["dataset.layout=rows14", "dataset.digits=[0,1,2]"]   # the paper's MNIST runs: 14 × 14, digits 0–2


def fit_sines(x: np.ndarray, freqs=np.linspace(0.5, 5.5, 501)) -> tuple[np.ndarray, np.ndarray]:
    """Per sequence (first channel): the (f, A) of the best least-squares fit a·sin + b·cos at each f."""
    seqs = x[:, :, 0].astype(np.float64)
    steps = seqs.shape[1]
    t = np.arange(steps)
    best_f, best_a, best_err = np.zeros(len(seqs)), np.zeros(len(seqs)), np.full(len(seqs), np.inf)
    for f in freqs:
        basis = np.stack([np.sin(2 * np.pi * f * t / steps), np.cos(2 * np.pi * f * t / steps)], 1)   # (T, 2)
        coef, *_ = np.linalg.lstsq(basis, seqs.T, rcond=None)                                            # (2, N)
        err = ((basis @ coef - seqs.T) ** 2).sum(0)
        better = err < best_err
        best_f[better], best_a[better], best_err[better] = f, np.hypot(*coef)[better], err[better]
    return best_f, best_a


def ks_uniform(values: np.ndarray, lo: float, hi: float) -> float:
    """sup |F_n(v) − F(v)| against U[lo, hi]."""
    v = np.sort(values)
    n = len(v)
    cdf = np.clip((v - lo) / (hi - lo), 0, 1)
    return float(max((np.arange(1, n + 1) / n - cdf).max(), (cdf - np.arange(n) / n).max()))


def settings(metrics, n, cache):
    return OmegaConf.create({"metrics": metrics, "n": n, "reference_n": 14000, "seed": 0, "batch_size": 250,
                             "features": "auto", "cache_dir": cache, "inception_weights": None,
                             "classifier_epochs": 3, "kid_subsets": 1, "kid_subset_size": 2})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=["sines", "mnist"], default="sines")
    ap.add_argument("--root", default="../shared/data/MNIST/raw")
    ap.add_argument("--seeds", nargs="+", default=["0"])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--cache", default="~/.cache/gancli")
    ap.add_argument("--out")
    ap.add_argument("overrides", nargs="*")
    args = benchlib.parse_args(ap, {"seeds": int})
    if args.task == "sines":
        data = ["model=rgan", "dataset=sines"]
        table = benchlib.Table("seed", "MMD²", "floor MMD²", "KS f", "KS A", "real KS f", "real KS A", "steps",
                               "time (s)")
    else:
        root = str(Path(args.root).expanduser().resolve())
        data = ["model=rcgan", "dataset=mnist_seq", f"dataset.root={root}", "dataset.download=false", *MNIST]
        table = benchlib.Table("seed", "TSTR", "TRTS", "TRTR", "MMD²", "floor MMD²", "steps", "time (s)")
    rows = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            trainer, seconds = benchlib.train([*data, f"seed={seed}", "trainer.sample_every=0",
                                               "trainer.ckpt_every=0", *args.overrides], Path(tmp))
            metrics = ["mmd"] if args.task == "sines" else ["tstr", "mmd"]
            ctx = model_context(trainer.algorithm, trainer.config["dataset"], settings(metrics, args.n, args.cache),
                                trainer.device, nets=trainer.sampling_nets())
            report = evaluate(ctx)
            v, low = report.values, report.floor
            if args.task == "sines":
                f, a = fit_sines(ctx.samples.numpy())
                rf, ra = fit_sines(ctx.real.test.samples[:args.n].numpy())
                row = [v["mmd"], low["mmd"], ks_uniform(f, 1, 5), ks_uniform(a, 0.1, 0.9), ks_uniform(rf, 1, 5),
                       ks_uniform(ra, 0.1, 0.9)]
            else:
                row = [v["tstr"], v["trts"], v["trtr"], v["mmd"], low["mmd"]]
            rows.append(row)
            table.add(seed, *(f"{c:.4f}" for c in row), trainer.total, f"{seconds:.0f}")
    if len(rows) > 1:
        cols = list(zip(*rows))
        table.add(f"median of {len(rows)}", *(benchlib.median_range(list(c), "{:.4f}") for c in cols), "", "")
    table.write(args.out)


if __name__ == "__main__":
    benchlib.run(main)
