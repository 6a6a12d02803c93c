#!/usr/bin/env python
"""Measures the sequence GANs as the RGAN authors do: MMD² on sines, TSTR on MNIST 0–2 at the validation-picked checkpoint.

`sines`: train `rgan` on the paper's sines with the authors' sines settings (model=rgan dataset=sines takes
conf/model_dataset/rgan_sines.yaml: 8400 training sequences, 100 of their epochs = 5900 iterations), draw
4,984 sequences (their evaluation size: 5000 // 28 batches of 28) and report, against held-out real ones:
MMD² with the median-heuristic bandwidth (1,000 of each, gancli's `mmd`), MMD² as the authors' code measures
it (`mmd_tuned`: two bandwidths tuned for the t-statistic on a fifth, MMD² on the other 3,988, their
estimate), each beside its real-vs-real floor; then fit A·sin(2πf·t/T + φ) to every sequence (least squares
over a grid of f) and report the Kolmogorov–Smirnov distance of the fitted frequencies to U[1, 5] and of the
amplitudes to U[0.1, 0.9], for the samples and for held-out real sequences.

`mnist`: train `rcgan` on MNIST digits 0–2 as sequences with the authors' MNIST settings (model=rcgan
dataset=mnist_seq takes conf/model_dataset/rcgan_mnist_seq.yaml: 14 rows of 14 values, their 60 % part
of the digits' training images, 1 D : 2 G updates, 3-d noise, 191 of their epochs = 25212 iterations) and
run their TSTR protocol (tstr.py, eval.TSTR_mnist): every --select-every iterations, draw as many synthetic
sequences as there are training sequences (11,174) with the training classes, fit a 500-tree random forest
and score it on the validation part (3,724); the checkpoint with the best validation weighted F1 is kept
(checkpoints/best.pt) and its forest's accuracy on the test part (3,725) is the TSTR reported, beside TRTS
(a forest fitted to the real training part, scored on the synthetic sequences), TRTR (that forest on the test
part) and MMD² (median heuristic, 1,000 sequences), all at that checkpoint; and TSTR at the last iteration.
Each evaluation fits one forest to 11k sequences (`--jobs` spreads its trees over CPU cores).

With `--runs DIR` each seed's run is kept in DIR/<task>-<seed>, with a checkpoint at each validation, and
the same command again continues a run that was stopped (Ctrl-C, a lost session) exactly where it stopped.

    python scripts/bench_sequences.py --task sines --seeds 0 1 2
    python scripts/bench_sequences.py --task mnist --seeds 0 1 2 --root ../shared/data/MNIST/raw --jobs 8 \
        --runs runs/bench_sequences
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import benchlib
import numpy as np
from omegaconf import OmegaConf

from gancli.core.errors import GanError
from gancli.metrics import evaluate
from gancli.metrics.suite import model_context

SINES_EVAL_N = 4984  # the authors' evaluation size: (5000 // batch 28) · 28
EPOCH = 132  # iterations in one of their MNIST epochs (11174 sequences, 3 batches an iteration)


FIT_FREQS = np.linspace(0.5, 5.5, 501)


def fit_sines(x: np.ndarray, freqs=FIT_FREQS) -> tuple[np.ndarray, np.ndarray]:
    """Per sequence (first channel): the (f, A) of the best least-squares fit a·sin + b·cos at each f."""
    seqs = x[:, :, 0].astype(np.float64)
    steps = seqs.shape[1]
    t = np.arange(steps)
    best_f, best_a, best_err = np.zeros(len(seqs)), np.zeros(len(seqs)), np.full(len(seqs), np.inf)
    for f in freqs:
        basis = np.stack([np.sin(2 * np.pi * f * t / steps), np.cos(2 * np.pi * f * t / steps)], 1)  # (T, 2)
        coef, *_ = np.linalg.lstsq(basis, seqs.T, rcond=None)  # (2, N)
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
    return OmegaConf.create(
        {
            "metrics": metrics,
            "n": n,
            "reference_n": 20000,
            "seed": 0,
            "batch_size": 250,
            "features": "auto",
            "cache_dir": cache,
            "inception_weights": None,
            "classifier_epochs": 3,
            "kid_subsets": 1,
            "kid_subset_size": 2,
        }
    )


def selection_overrides(every: int, cache: str) -> list[str]:
    """Evaluation during training that keeps the checkpoint with the best validation TSTR (weighted F1)."""
    return [
        f"eval.every={every}",
        "eval.metrics=[tstr_vali,tstr,mmd]",
        "eval.best=tstr_vali_f1",
        "eval.n=1000",
        "eval.reference_n=20000",
        f"eval.cache_dir={cache}",
    ]


def mnist_run(root: str, every: int, cache: str) -> list[str]:
    """The overrides of the RCGAN run on MNIST sequences: the authors' recipe, validated every `every` steps."""
    root, cache = (str(Path(p).expanduser().resolve()) for p in (root, cache))  # an override cannot hold '~'
    return [
        "model=rcgan",
        "dataset=mnist_seq",
        f"dataset.root={root}",
        "dataset.download=false",
        *selection_overrides(every, cache),
    ]


def evaluations(run_dir: Path) -> list[dict]:
    """The evaluations logged during training, in order: {"step", "tstr_vali_f1", "tstr", ...}."""
    lines = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    found = [
        {"step": ln["step"], **{k.split("/", 1)[1]: v for k, v in ln.items() if k.startswith("eval/")}}
        for ln in lines
        if "eval/tstr_vali_f1" in ln
    ]
    if not found:
        raise GanError(
            f"no evaluation reached {run_dir / 'metrics.jsonl'}: was --select-every above the run's "
            "length, or did the evaluation fail (see the log)?"
        )
    return found


def picked(found: list[dict]) -> dict:
    """The first evaluation with the highest validation F1 (what eval.best keeps in best.pt)."""
    return max(found, key=lambda e: (e["tstr_vali_f1"], -e["step"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=["sines", "mnist"], default="sines")
    ap.add_argument("--root", default="../shared/data/MNIST/raw")
    ap.add_argument("--seeds", nargs="+", default=["0"])
    ap.add_argument("--n", type=int, default=SINES_EVAL_N, help="sines: sequences drawn for the measures")
    ap.add_argument(
        "--select-every",
        type=int,
        default=10 * EPOCH,
        help="mnist: iterations between validation TSTRs (default: 10 of the authors' epochs)",
    )
    ap.add_argument("--jobs", type=int, default=1, help="CPU cores for each random forest")
    ap.add_argument("--cache", default="~/.cache/gancli")
    ap.add_argument("--out")
    ap.add_argument("--runs", help="keep each seed's run in RUNS/<task>-<seed>; the same command continues it")
    ap.add_argument("overrides", nargs="*")
    args = benchlib.parse_args(ap, {"seeds": int})
    if args.task == "sines":
        data = ["model=rgan", "dataset=sines"]
        table = benchlib.Table(
            "seed",
            "MMD²",
            "floor MMD²",
            "tuned MMD²",
            "floor tuned MMD²",
            "KS f",
            "KS A",
            "real KS f",
            "real KS A",
            "steps",
            "time (s)",
        )
    else:
        data = mnist_run(args.root, args.select_every, args.cache)
        table = benchlib.Table(
            "seed", "picked step", "vali F1", "TSTR", "TRTS", "TRTR", "MMD²", "last-step TSTR", "steps", "time (s)"
        )
    rows = []
    import joblib

    every = args.select_every if args.task == "mnist" else 500  # what a lost session can cost of a kept run
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp, joblib.parallel_config(n_jobs=args.jobs):
            run_dir = Path(args.runs) / f"{args.task}-{seed}" if args.runs else Path(tmp)
            keep = f"trainer.ckpt_every={every if args.runs else 0}"
            trainer, seconds = benchlib.train(
                [*data, f"seed={seed}", "trainer.sample_every=0", keep, *args.overrides],
                run_dir,
                resume=bool(args.runs),
            )
            if args.task == "sines":
                ctx = model_context(
                    trainer.algorithm,
                    trainer.config["dataset"],
                    settings(["mmd", "mmd_tuned"], args.n, args.cache),
                    trainer.device,
                    nets=trainer.sampling_nets(),
                )
                report = evaluate(ctx)
                v, low = report.values, report.floor
                f, a = fit_sines(ctx.samples.numpy())
                rf, ra = fit_sines(ctx.real.test.samples[: args.n].numpy())
                row = [
                    v["mmd"],
                    low["mmd"],
                    v["mmd_tuned"],
                    low["mmd_tuned"],
                    ks_uniform(f, 1, 5),
                    ks_uniform(a, 0.1, 0.9),
                    ks_uniform(rf, 1, 5),
                    ks_uniform(ra, 0.1, 0.9),
                ]
                cells = [f"{c:.4f}" for c in row]
            else:
                found = evaluations(run_dir)
                best, last = picked(found), found[-1]
                row = [best["tstr_vali_f1"], best["tstr"], best["trts"], best["trtr"], best["mmd"], last["tstr"]]
                cells = [best["step"], *(f"{c:.4f}" for c in row)]
            rows.append(row)
            table.add(seed, *cells, trainer.total, f"{seconds:.0f}")
    if len(rows) > 1:
        cols = [benchlib.median_range(list(c), "{:.4f}") for c in zip(*rows)]
        table.add(f"median of {len(rows)}", *([""] if args.task == "mnist" else []), *cols, "", "")
    table.write(args.out)


if __name__ == "__main__":
    benchlib.run(main)
