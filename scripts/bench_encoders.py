#!/usr/bin/env python
"""GANs with an encoder against their papers' measures, each beside the baseline that gives it meaning.

`nn` (BiGAN / ALI on MNIST, 60k train / 10k test): the accuracy of 1-nearest-neighbour classification of
the test split in latent space, the encoded train split as the memory; beside it the same measure for a
randomly initialised encoder of the same architecture (the official BiGAN log shows a random encoder near
96.8 % on a deep feature, so only the difference means something). Anchor: BiGAN 97.39 % (Donahue et al.
2017, Table 1, permutation-invariant MNIST).

`grid` (ALI and a GAN on the 2-D grid of 25 Gaussians): modes covered by 2,500 samples, the VEEGAN / PacGAN
protocol. Anchor: ALI 13.4 ± 5.8 of 25, GAN 10.4 ± 9.2 (Dumoulin et al. 2017 as reported by VEEGAN).

`cluster` (aae_cluster on MNIST): the test error when each of the 16 clusters takes the majority label of
its training members, against k-means with 16 clusters on raw pixels; the test reconstruction error.
Anchor: 9.55 % (Makhzani et al. 2016, Table 3, 16 clusters).

`semi` (aae_semi on MNIST with 1,000 labels): the test error of the categorical code, against the same
encoder trained on the 1,000 labels alone for as many steps. Anchor: 1.60 % (± 0.08; Makhzani et al. 2016,
Table 2).

    python scripts/bench_encoders.py --task nn --root ../shared/data --seeds 0 1 2
    python scripts/bench_encoders.py --task grid --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import benchlib
import torch
import torch.nn.functional as F

from gancli.data.base import split_reference
from gancli.metrics.latent import cluster_error, nearest_neighbour_accuracy
from gancli.metrics.points import mode_stats

TASKS = {"nn": ["bigan", "ali"], "grid": ["ali", "gan"], "cluster": ["aae_cluster"], "semi": ["aae_semi"]}
# on the 2-D grid every model trains the dataset's MLPs; ALI's joint D gets layers as narrow as theirs and, as in
# the reference's mixture run, no dropout
GRID = {
    "ali": [
        "model.discriminator.z_hidden=[128]",
        "model.discriminator.joint_hidden=[128]",
        "model.discriminator.dropout=0",
    ]
}


def mnist(root: str) -> list[str]:
    return ["dataset=mnist", f"dataset.root={Path(root).resolve()}", "dataset.download=false"]


def splits(cfg) -> tuple[dict, dict]:
    return split_reference(cfg.dataset, 10**7, "train"), split_reference(cfg.dataset, 10**7, "test")


def nn_row(model: str, overrides: list[str], run_dir: Path) -> tuple[float, float, float]:
    """(trained 1-NN accuracy, random-encoder 1-NN accuracy, seconds)."""
    trainer, seconds = benchlib.train([f"model={model}", *overrides], run_dir)
    train, test = splits(trainer.algorithm.cfg)
    algo = trainer.algorithm

    def accuracy(a) -> float:
        return nearest_neighbour_accuracy(a.encode(train["x"])["z"], train["y"], a.encode(test["x"])["z"], test["y"])

    trained = accuracy(algo)
    fresh = benchlib.build_only([f"model={model}", *overrides], run_dir / "random")
    return trained, accuracy(fresh), seconds


def grid_row(model: str, overrides: list[str], run_dir: Path) -> tuple[float, float]:
    trainer, _ = benchlib.train([f"model={model}", "dataset=grid25", *GRID.get(model, []), *overrides], run_dir)
    g = torch.Generator().manual_seed(0)
    points = trainer.algorithm.sample({}, 2500, 50, g, 2500, grid=False)["samples"].data
    extras = trainer.algorithm.spec["x"].extras
    stats = mode_stats(points, torch.tensor(extras["centres"]), float(extras["std"]))
    return stats["modes"], stats["hq"]


def cluster_row(overrides: list[str], run_dir: Path) -> tuple[float, float, float]:
    trainer, _ = benchlib.train(["model=aae_cluster", *overrides], run_dir)
    train, test = splits(trainer.algorithm.cfg)
    algo = trainer.algorithm
    k = algo.clusters
    c_train, c_test = algo.encode(train["x"])["cluster"], algo.encode(test["x"])["cluster"]
    rec = F.mse_loss(algo.reconstruct(test["x"]), test["x"]).item()
    return cluster_error(c_train, train["y"], c_test, test["y"], k), rec, float(len(torch.unique(c_test)))


def kmeans_error(overrides: list[str], k: int, seed: int) -> float:
    from sklearn.cluster import KMeans

    cfg = benchlib.compose(["model=aae_cluster", *overrides])
    train, test = splits(cfg)
    km = KMeans(k, n_init=3, random_state=seed).fit(train["x"].flatten(1).numpy())
    return cluster_error(
        torch.from_numpy(km.labels_),
        train["y"],
        torch.from_numpy(km.predict(test["x"].flatten(1).numpy())),
        test["y"],
        k,
    )


def semi_row(overrides: list[str], run_dir: Path) -> tuple[float, float]:
    """(AAE test error, the same encoder trained on the labelled subset alone)."""
    trainer, _ = benchlib.train(["model=aae_semi", *overrides], run_dir)
    _, test = splits(trainer.algorithm.cfg)
    algo = trainer.algorithm
    err = (algo.encode(test["x"])["y"].argmax(1) != test["y"]).float().mean().item()
    # the baseline: a fresh copy of the encoder, only the classification phase, the same steps and batch
    fresh = benchlib.build_only(["model=aae_semi", *overrides], run_dir / "labels_only")
    E, subset = fresh.nets["encoder"], fresh.subset()
    opt = fresh.optimizers["classifier"]
    E.train()
    for step in range(int(trainer.algorithm.cfg.trainer.steps)):
        xl, yl = subset.batch(int(trainer.algorithm.cfg.trainer.batch_size), step)
        loss = F.cross_entropy(E.encode(xl)["y"], yl)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    E.eval()
    base = (fresh.encode(test["x"])["y"].argmax(1) != test["y"]).float().mean().item()
    return err, base


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=list(TASKS), default="nn")
    ap.add_argument("--models", nargs="+", default=[])
    ap.add_argument("--seeds", nargs="+", default=["0"])
    ap.add_argument("--root", default="../shared/data", help="where MNIST's IDX files are (tasks nn, cluster, semi)")
    ap.add_argument("--out", default=None, help="also write the table to this markdown file")
    ap.add_argument("--runs", default=None, help="keep the run dirs here (default: a temporary folder)")
    ap.add_argument("overrides", nargs="*", help="extra `gan train` overrides for every run")
    args = benchlib.parse_args(ap, {"models": "model", "seeds": int})
    models = args.models or TASKS[args.task]
    data = [] if args.task == "grid" else mnist(args.root)
    runs = Path(args.runs or tempfile.mkdtemp(prefix="bench_encoders-"))
    columns = {
        "nn": ("model", "seed", "1-NN acc. (trained)", "1-NN acc. (random encoder)", "train s"),
        "grid": ("model", "seed", "modes of 25", "high-quality share"),
        "cluster": ("model", "seed", "cluster error", "k-means (16, pixels)", "test MSE", "clusters used"),
        "semi": ("model", "seed", "test error (1000 labels)", "encoder on the labels alone"),
    }[args.task]
    table = benchlib.Table(*columns)
    for model in models:
        for seed in args.seeds:
            over = [*data, f"seed={seed}", *args.overrides]
            where = runs / f"{args.task}-{model}-{seed}"
            if args.task == "nn":
                trained, fresh, seconds = nn_row(model, over, where)
                table.add(model, seed, f"{100 * trained:.2f} %", f"{100 * fresh:.2f} %", f"{seconds:.0f}")
            elif args.task == "grid":
                modes, hq = grid_row(model, over, where)
                table.add(model, seed, f"{modes:.0f}", f"{100 * hq:.1f} %")
            elif args.task == "cluster":
                err, rec, used = cluster_row(over, where)
                table.add(
                    model,
                    seed,
                    f"{100 * err:.2f} %",
                    f"{100 * kmeans_error(over, 16, int(seed)):.2f} %",
                    f"{rec:.4f}",
                    f"{used:.0f}",
                )
            else:
                err, base = semi_row(over, where)
                table.add(model, seed, f"{100 * err:.2f} %", f"{100 * base:.2f} %")
    table.write(args.out)


if __name__ == "__main__":
    benchlib.run(main)
