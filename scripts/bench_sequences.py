#!/usr/bin/env python
"""Measures the sequence GANs as the RGAN authors do: MMD² on sines and TSTR on MNIST 0–2, each at the
checkpoint their code keeps (chosen on a validation part).

`sines`: train `rgan` on the paper's sines with the authors' sines settings (model=rgan dataset=sines takes
conf/model_dataset/rgan_sines.yaml: 8400 training sequences, 100 of their epochs = 5900 iterations). After
each of their epochs (59 iterations) draw 4,984 sequences (their evaluation size: 5000 // 28 batches of 28)
and score, as `gan train eval.*` logs it: MMD² against a validation draw of sines (`mmd_vali`, median
heuristic, 1,000 of each), against the held-out test draw (`mmd`) and the sines' fitted range (`sine_fit`:
a sine fitted to every sequence, the Kolmogorov–Smirnov distance of its frequencies to U[1, 5] and of its
amplitudes to U[0.1, 0.9]). Their code keeps the checkpoint with the lowest validation MMD² after epoch 10
(experiment.py); so does the preset (`eval.best=mmd_vali eval.best_after=649`), and this reports its test scores.
Their selection MMD² tunes two bandwidths (below), which takes minutes an evaluation on one core here; this
picks by the median-heuristic MMD² instead. At the last iteration it also reports MMD² as the authors' code
measures it (`mmd_tuned`: two bandwidths tuned for the t-statistic on a fifth, MMD² on the other 3,988,
their estimate), each value beside its real-vs-real floor. `--curve E …` adds a table of the logged scores
at those epochs, median and range over the seeds.

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

    python scripts/bench_sequences.py --task sines --seeds 0 1 2 --runs runs/bench_sequences --curve 10 25 50 75 100
    python scripts/bench_sequences.py --task mnist --seeds 0 1 2 --root ../shared/data/MNIST/raw --jobs 8 \
        --runs runs/bench_sequences
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import benchlib
from omegaconf import OmegaConf

from gancli.core.errors import GanError
from gancli.metrics import evaluate, higher_is_better
from gancli.metrics.suite import model_context

SINES_EVAL_N = 4984  # the authors' evaluation size: (5000 // batch 28) · 28
SINES_EPOCH = 59  # iterations in one of their sines epochs (300 batches, 5 a step: D_rounds, unconditional)
EPOCH = 132  # iterations in one of their MNIST epochs (11174 sequences, 3 batches an iteration)


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


def sines_run(every: int) -> list[str]:
    """The overrides of the RGAN run on sines: the preset alone (rgan_sines.yaml holds the authors' settings
    and their checkpoint choice), scored every `every` steps."""
    return ["model=rgan", "dataset=sines", f"eval.every={every}"]


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


def evaluations(run_dir: Path, key: str) -> list[dict]:
    """The evaluations logged during training, in order: {"step", key, ...} (eval/ names without the prefix)."""
    lines = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    found = [
        {"step": ln["step"], **{k.split("/", 1)[1]: v for k, v in ln.items() if k.startswith("eval/")}}
        for ln in lines
        if f"eval/{key}" in ln
    ]
    if not found:
        raise GanError(
            f"no evaluation reached {run_dir / 'metrics.jsonl'}: was --select-every above the run's "
            "length, or did the evaluation fail (see the log)?"
        )
    return found


def picked(found: list[dict], key: str, after: int = 0) -> dict:
    """The first evaluation after step `after` with the best `key` (what eval.best with eval.best_after keeps
    in best.pt), read back from the log, where every evaluation's other values are."""
    sign = 1 if higher_is_better(key) else -1
    eligible = [e for e in found if e["step"] > after]
    if not eligible:
        raise GanError(
            f"no evaluation after step {after} (eval.best_after), where the run starts keeping a best: train longer."
        )
    return max(eligible, key=lambda e: (sign * e[key], -e["step"]))


def curve_table(per_seed: list[list[dict]], epochs: list[int], epoch: int, out: str | None) -> None:
    """The logged scores at the given epochs, median and range over the seeds."""
    table = benchlib.Table("epoch", "step", "MMD²", "validation MMD²", "KS f", "KS A", "per seed, KS f")
    for e in epochs:
        at = [next((r for r in found if r["step"] == e * epoch), None) for found in per_seed]
        at = [r for r in at if r is not None]
        if not at:
            continue
        cells = [benchlib.median_range([r[k] for r in at], "{:.4f}") for k in ("mmd", "mmd_vali")]
        cells += [benchlib.median_range([r[k] for r in at], "{:.3f}") for k in ("ks_freq", "ks_amp")]
        table.add(e, e * epoch, *cells, " / ".join(f"{r['ks_freq']:.3f}" for r in at))
    table.write(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=["sines", "mnist"], default="sines")
    ap.add_argument("--root", default="../shared/data/MNIST/raw")
    ap.add_argument("--seeds", nargs="+", default=["0"])
    ap.add_argument("--n", type=int, default=SINES_EVAL_N, help="sines: sequences drawn for the last step's measures")
    ap.add_argument(
        "--select-every",
        type=int,
        help="iterations between validations (default: one of the authors' epochs on sines, 10 on mnist)",
    )
    ap.add_argument("--curve", type=int, nargs="*", default=[], help="sines: epochs to tabulate the logged scores at")
    ap.add_argument("--jobs", type=int, default=1, help="CPU cores for each random forest")
    ap.add_argument("--cache", default="~/.cache/gancli")
    ap.add_argument("--out")
    ap.add_argument("--runs", help="keep each seed's run in RUNS/<task>-<seed>; the same command continues it")
    ap.add_argument("overrides", nargs="*")
    args = benchlib.parse_args(ap, {"seeds": int})
    if args.task == "sines":
        every = args.select_every or SINES_EPOCH
        data = sines_run(every)
        table = benchlib.Table(
            "seed",
            "picked step",
            "picked MMD²",
            "picked KS f",
            "picked KS A",
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
        every = args.select_every or 10 * EPOCH
        data = mnist_run(args.root, every, args.cache)
        table = benchlib.Table(
            "seed", "picked step", "vali F1", "TSTR", "TRTS", "TRTR", "MMD²", "last-step TSTR", "steps", "time (s)"
        )
    rows, logs = [], []
    import joblib

    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp, joblib.parallel_config(n_jobs=args.jobs):
            run_dir = Path(args.runs) / f"{args.task}-{seed}" if args.runs else Path(tmp)
            keep = f"trainer.ckpt_every={every if args.runs else 0}"  # what a lost session can cost a kept run
            trainer, seconds = benchlib.train(
                [*data, f"seed={seed}", "trainer.sample_every=0", keep, *args.overrides],
                run_dir,
                resume=bool(args.runs),
            )
            chosen = trainer.config["eval"]  # what the run keeps best.pt by: the preset's, or mnist_run's
            found = evaluations(run_dir, chosen["best"])
            best = picked(found, chosen["best"], chosen["best_after"])
            logs.append(found)
            if args.task == "sines":
                ctx = model_context(
                    trainer.algorithm,
                    trainer.config["dataset"],
                    settings(["mmd", "mmd_tuned", "sine_fit"], args.n, args.cache),
                    trainer.device,
                    nets=trainer.sampling_nets(),
                )
                report = evaluate(ctx)
                v, low = report.values, report.floor
                row = [
                    best["mmd"],
                    best["ks_freq"],
                    best["ks_amp"],
                    v["mmd"],
                    low["mmd"],
                    v["mmd_tuned"],
                    low["mmd_tuned"],
                    v["ks_freq"],
                    v["ks_amp"],
                    low["ks_freq"],
                    low["ks_amp"],
                ]
                cells = [best["step"], *(f"{c:.4f}" for c in row)]
            else:
                last = found[-1]
                row = [best["tstr_vali_f1"], best["tstr"], best["trts"], best["trtr"], best["mmd"], last["tstr"]]
                cells = [best["step"], *(f"{c:.4f}" for c in row)]
            rows.append(row)
            table.add(seed, *cells, trainer.total, f"{seconds:.0f}")
    if len(rows) > 1:
        cols = [benchlib.median_range(list(c), "{:.4f}") for c in zip(*rows)]
        table.add(f"median of {len(rows)}", "", *cols, "", "")
    table.write(args.out)
    if args.curve:
        curve_table(logs, args.curve, every, args.out and f"{args.out}.curve.md")


if __name__ == "__main__":
    benchlib.run(main)
