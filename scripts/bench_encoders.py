#!/usr/bin/env python
"""GANs with an encoder against their papers' measures, by the authors' protocols, each beside the baseline
that gives it meaning, as a learning curve: one run per seed, scored at each epoch of `--epochs`.

`nn` (BiGAN / ALI on MNIST): 1-nearest-neighbour accuracy with BiGAN's official split: the run trains on the
first 50,000 images of the training split, which are also the memory; the queries are the other 10,000 of
the training split (the test split is not used). Scored on z (the code head's linear output: BiGAN's code
`NNC_e` reads it before the squash into (−1, 1); ALI's: μ) and on h, the encoder's last hidden layer (the
1024-d layer of the paper's 97.39 %, `NNC_e-`), beside the same two for a random encoder of the same
architecture (the run's own weights at step 0). Before scoring, each encoder's BatchNorm statistics are
re-estimated over one pass of the memory, as the reference's `deploy` step does. Anchors: the official
MNIST log, `NNC_e` / `NNC_e-`: epoch 0 91.50 / 96.84 %, 1: 89.94 / 92.56 %, 25: 95.41 / 96.28 %, 200: 95.92
/ 97.14 %, 400: 92.10 / 97.35 %.

`grid` (ALI and a GAN on the 2-D grid of 25 Gaussians): modes covered by 2,500 samples, the VEEGAN / PacGAN
protocol, at the end of the run. Anchor: ALI 13.4 ± 5.8 of 25, GAN 10.4 ± 9.2 (Dumoulin et al. 2017 as
reported by VEEGAN).

`cluster` (aae_cluster on MNIST): the test error when each of the 16 clusters takes the majority label of
its members in the training split (the mapping is fitted there, on the 60,000 images the run trained on
without their labels; the error is on the 10,000 test images), against k-means with 16 clusters on raw
pixels mapped the same way; beside it the rule of the paper's text (each cluster takes the label of the
training image it is most confident of), the test reconstruction MSE and the clusters used. Anchor: 9.55 %
(Makhzani et al. 2016, Table 3, 16 clusters).

`semi` (aae_semi on MNIST with 1,000 labels): the test error of the categorical code, against the same
encoder trained on the 1,000 labels alone for as many steps. Anchor: 1.60 % (± 0.08; Makhzani et al. 2016,
Table 2).

`dimred` (aae_dimred on MNIST, 2-D codes, 20 cluster heads): the test error of the cluster each image falls
in (majority label, fitted on the training split), and of 1-NN in the 2-D code (memory: the training codes),
beside the same 1-NN on the first two principal components of the pixels; the 2-D scatter of the test codes
with the heads (`<runs>/dimred-aae_dimred-<seed>/scatter-epoch<E>.png`) is the paper's figure. Anchor: the
figure (Makhzani et al. 2016 §7); no error of the unsupervised 2-D run is set against it here.

`style` (aae_supervised on MNIST): how well the label and the style separate. `class_acc` as `gan eval`
reports it (a classifier of real digits, trained once and cached, reads samples of each class: the share
it calls the class they were drawn for), and the style kept across classes: draw a grid of 10 styles × 10
digits (`class=all`, one z per column), encode every image back, and divide the mean distance between the
codes of one style by that between the codes of different styles (1: the style is lost, 0: kept exactly);
and `relabel_acc`, the view of the reference's own figure: real test images encoded and decoded with every
label, the share the classifier calls the label given. Anchor: the paper's figure of styles across digits
(§4); it gives no number.

An epoch is ⌈training images / batch⌉ steps. The scoring at each point neither draws from nor changes the
run's random state, so the curve is one ordinary run. With `--runs DIR` each curve keeps its run, its
checkpoint at every point and its scored rows (curve.json) there: the same command again continues a curve
that was stopped (Ctrl-C, a lost session) where it stopped, exactly, and a longer `--epochs` extends it
(past the run's `trainer.steps` too, when its learning rate is constant: a decay reads the run's length).

    python scripts/bench_encoders.py --task nn --models bigan --epochs 0 1 5 10 25 --seeds 0 1 --root ../shared/data \
        --runs runs/bench_encoders
    python scripts/bench_encoders.py --task cluster --epochs 1 5 10 20 40 --seeds 0 1 --root ../shared/data
    python scripts/bench_encoders.py --task grid --seeds 0 1 2
    python scripts/bench_encoders.py --task dimred --epochs 1 5 10 --seeds 0 1 --root ../shared/data --runs runs/enc
    python scripts/bench_encoders.py --task style --epochs 1 5 10 --seeds 0 1 --root ../shared/data --runs runs/enc
"""

from __future__ import annotations

import argparse
import copy
import math
import tempfile
from pathlib import Path

import benchlib
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

import gancli
from gancli.algorithms.aae import phase_optimizers
from gancli.data.base import build_dataset, split_reference
from gancli.metrics.latent import cluster_error, confident_labels, nearest_neighbour_accuracy
from gancli.metrics.points import mode_stats
from gancli.viz import save_panels

TASKS = {
    "nn": ["bigan", "ali"],
    "grid": ["ali", "gan"],
    "cluster": ["aae_cluster"],
    "semi": ["aae_semi"],
    "dimred": ["aae_dimred"],
    "style": ["aae_supervised"],
}
# BiGAN's official MNIST log: epoch → (NNC_e on z, NNC_e- on the 1024-d layer), in %
BIGAN_LOG = {0: (91.50, 96.84), 1: (89.94, 92.56), 25: (95.41, 96.28), 200: (95.92, 97.14), 400: (92.10, 97.35)}
MEMORY, QUERIES = (0, 50000), (50000, 60000)  # BiGAN's split of the 60,000 training images
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


def part(cfg, split: str, subset: tuple[int, int] | None = None) -> dict:
    """Every sample of a split of the run's dataset (or of `subset` of it), labels included."""
    data = OmegaConf.to_container(cfg.dataset, resolve=True)
    data.update(split=split, subset=list(subset) if subset else None)
    return build_dataset(OmegaConf.create(data)).reference(10**7)


def steps_per_epoch(cfg) -> int:
    n = build_dataset(cfg.dataset).stream(1, torch.device("cpu"), 0).n
    return math.ceil(n / int(cfg.trainer.batch_size))


# -- scoring ---------------------------------------------------------------------------------------------
@torch.no_grad()
def deploy_batch_norm(net: torch.nn.Module, x: torch.Tensor, batch: int = 128) -> None:
    """BatchNorm running statistics as the plain average over one pass of x (the reference's `deploy`)."""
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    for i in range(0, len(x), batch):
        net(x[i : i + batch])
    net.eval()


@torch.no_grad()
def features(encoder, x: torch.Tensor, batch: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """(z, h) of x: the code head's linear output (μ for a Gaussian encoder) and the last hidden layer."""
    zs, hs = [], []
    for i in range(0, len(x), batch):
        h = encoder.body(x[i : i + batch]).flatten(1)
        zs.append(encoder.out(h)[:, : encoder.z_dim])
        hs.append(h)
    return torch.cat(zs), torch.cat(hs)


def nn_scores(encoder, memory: dict, queries: dict) -> tuple[float, float]:
    """1-NN accuracy of the queries against the memory, on z and on h, with BatchNorm deployed on the memory."""
    E = copy.deepcopy(encoder).cpu().float()
    deploy_batch_norm(E, memory["x"])
    (zm, hm), (zq, hq) = features(E, memory["x"]), features(E, queries["x"])
    return (
        nearest_neighbour_accuracy(zm, memory["y"], zq, queries["y"]),
        nearest_neighbour_accuracy(hm, memory["y"], hq, queries["y"]),
    )


def cluster_scores(algo, train: dict, test: dict) -> tuple[float, float, float, float]:
    """(majority-label error, most-confident-label error, test MSE, clusters used); mappings fitted on train."""
    k = algo.clusters
    tr, te = algo.encode(train["x"]), algo.encode(test["x"])
    majority = cluster_error(tr["cluster"], train["y"], te["cluster"], test["y"], k)
    confident = (confident_labels(tr["y"], train["y"])[te["cluster"].long()] != test["y"]).float().mean().item()
    rec = F.mse_loss(algo.reconstruct(test["x"]), test["x"]).item()
    return majority, confident, rec, float(len(torch.unique(te["cluster"])))


def kmeans_error(train: dict, test: dict, k: int, seed: int) -> float:
    from sklearn.cluster import KMeans

    km = KMeans(k, n_init=3, random_state=seed).fit(train["x"].flatten(1).numpy())
    test_clusters = torch.from_numpy(km.predict(test["x"].flatten(1).numpy()))
    return cluster_error(torch.from_numpy(km.labels_), train["y"], test_clusters, test["y"], k)


def semi_error(algo, test: dict) -> float:
    return (algo.encode(test["x"])["y"].argmax(1) != test["y"]).float().mean().item()


def dimred_scores(algo, train: dict, test: dict) -> tuple[float, float, float]:
    """(cluster error by majority label fitted on train, 1-NN error in the n-D code, clusters used)."""
    tr, te = algo.encode(train["x"]), algo.encode(test["x"])
    majority = cluster_error(tr["cluster"], train["y"], te["cluster"], test["y"], algo.clusters)
    nn = 1 - nearest_neighbour_accuracy(tr["z"], train["y"], te["z"], test["y"])
    return majority, nn, float(len(torch.unique(te["cluster"])))


def pca_nn_error(train: dict, test: dict, dims: int = 2) -> float:
    """The classic baseline: 1-NN error on the first `dims` principal components of the pixels."""
    xt, xq = train["x"].flatten(1).float(), test["x"].flatten(1).float()
    mean = xt.mean(0)
    _, _, v = torch.pca_lowrank(xt - mean, q=dims, center=False, niter=4)
    project = v[:, :dims]
    return 1 - nearest_neighbour_accuracy((xt - mean) @ project, train["y"], (xq - mean) @ project, test["y"])


def style_kept(codes: torch.Tensor, classes: int, styles: int) -> float:
    """Codes (classes × styles, d) of a class=all grid (row = class, column = style), encoded back: mean
    distance within a style (a column) over mean distance between styles; 0 = the style kept exactly."""
    grid = codes.float().view(classes, styles, -1)
    within = torch.stack([torch.pdist(grid[:, j]).mean() for j in range(styles)]).mean()
    between = torch.stack([torch.pdist(grid[k]).mean() for k in range(classes)]).mean()
    return (within / between).item()


class LabelsAlone:
    """The semi-supervised baseline: a fresh copy of the run's encoder trained by its classification phase
    alone on the same labelled subset, the same batch and steps, advanced alongside the curve."""

    def __init__(self, overrides: list[str], run_dir: Path, batch: int):
        self.algo, self.batch, self.step = benchlib.build_only(overrides, run_dir), batch, 0
        self.opts = phase_optimizers(self.algo.optimizers, "classifier", ())

    def advance_to(self, steps: int) -> None:
        E, subset = self.algo.nets["encoder"], self.algo.subset()
        E.train()
        for step in range(self.step, steps):
            xl, yl = subset.batch(self.batch, step)
            self.algo.precision.step("classifier", F.cross_entropy(E.encode(xl)["y"], yl), self.opts)
        self.step = steps
        E.eval()


def pct(v: float) -> str:
    return f"{100 * v:.2f} %"


def nn_task(model: str, seed: int, over: list[str], where: Path, epochs: list[int], table) -> None:
    over = [f"model={model}", f"dataset.subset=[{MEMORY[0]},{MEMORY[1]}]", *over]
    cfg = benchlib.compose(over)
    memory, queries = part(cfg, "train", MEMORY), part(cfg, "train", QUERIES)

    def score(trainer, epoch, seconds, memo):
        z, h = nn_scores(trainer.algorithm.nets["encoder"], memory, queries)
        if "random" not in memo:  # epoch 0: the run's own initial weights, the random encoder of the same architecture
            memo["random"] = [z, h]
        rz, rh = memo["random"]
        log = BIGAN_LOG.get(epoch) if model == "bigan" else None
        anchor = f"{log[0]:.2f} / {log[1]:.2f} %" if log else "—"
        return model, seed, epoch, trainer.step, pct(z), pct(rz), pct(h), pct(rh), anchor, f"{seconds:.0f}"

    benchlib.curve(over, where, sorted({0, *epochs}), score, table, steps_per_epoch)


def cluster_task(seed: int, over: list[str], where: Path, epochs: list[int], table) -> None:
    over = ["model=aae_cluster", *over]
    cfg = benchlib.compose(over)
    train, test = split_reference(cfg.dataset, 10**7, "train"), split_reference(cfg.dataset, 10**7, "test")
    km = kmeans_error(train, test, 16, seed)

    def score(trainer, epoch, seconds, memo):
        majority, confident, rec, used = cluster_scores(trainer.algorithm, train, test)
        return (
            "aae_cluster",
            seed,
            epoch,
            trainer.step,
            pct(majority),
            pct(km),
            pct(confident),
            f"{rec:.4f}",
            f"{used:.0f}",
        )

    benchlib.curve(over, where, epochs, score, table, steps_per_epoch)


def semi_task(seed: int, over: list[str], where: Path, epochs: list[int], table) -> None:
    over = ["model=aae_semi", *over]
    cfg = benchlib.compose(over)
    test = split_reference(cfg.dataset, 10**7, "test")
    with torch.random.fork_rng():
        base = LabelsAlone(over, where / "labels_only", int(cfg.trainer.batch_size))

    def score(trainer, epoch, seconds, memo):
        base.advance_to(trainer.step)  # deterministic by step, so a resumed curve retrains it to the same weights
        errors = semi_error(trainer.algorithm, test), semi_error(base.algo, test)
        return ("aae_semi", seed, epoch, trainer.step, *map(pct, errors))

    benchlib.curve(over, where, epochs, score, table, steps_per_epoch)


def dimred_task(seed: int, over: list[str], where: Path, epochs: list[int], table) -> None:
    over = ["model=aae_dimred", *over]
    cfg = benchlib.compose(over)
    train, test = split_reference(cfg.dataset, 10**7, "train"), split_reference(cfg.dataset, 10**7, "test")
    pca = pca_nn_error(train, test)

    def score(trainer, epoch, seconds, memo):
        algo = trainer.algorithm
        majority, nn, used = dimred_scores(algo, train, test)
        save_panels(
            {"codes": algo.latent_scatter(test["x"][:5000], test["y"][:5000])}, where / f"scatter-epoch{epoch}.png"
        )
        return "aae_dimred", seed, epoch, trainer.step, pct(majority), pct(nn), pct(pca), f"{used:.0f}"

    benchlib.curve(over, where, epochs, score, table, steps_per_epoch)


def style_task(seed: int, over: list[str], where: Path, epochs: list[int], table) -> None:
    over = ["model=aae_supervised", *over]

    def score(trainer, epoch, seconds, memo):
        algo = trainer.algorithm
        report = gancli.evaluate(
            ckpt=str(where / "checkpoints" / "last.pt"),
            metrics=["class_acc", "relabel_acc"],
            n=1000,
            device="cpu",
            quiet=True,
        )
        classes, styles = algo.sample_classes(), 10
        panel = algo.sample({"class": "all"}, styles * classes, styles, torch.Generator().manual_seed(seed), 500)
        codes = algo.encode(panel["samples"].data)["z"]
        ratio = style_kept(codes, classes, styles)
        values = report["values"]
        acc, worst, relabel = values["class_acc"], values["class_acc_worst"], values["relabel_acc"]
        return "aae_supervised", seed, epoch, trainer.step, pct(acc), pct(worst), f"{ratio:.3f}", pct(relabel)

    benchlib.curve(over, where, epochs, score, table, steps_per_epoch)


def grid_row(model: str, overrides: list[str], run_dir: Path) -> tuple[float, float]:
    trainer, _ = benchlib.train([f"model={model}", "dataset=grid25", *GRID.get(model, []), *overrides], run_dir)
    g = torch.Generator().manual_seed(0)
    points = trainer.algorithm.sample({}, 2500, 50, g, 2500, grid=False)["samples"].data
    extras = trainer.algorithm.spec["x"].extras
    stats = mode_stats(points, torch.tensor(extras["centres"]), float(extras["std"]))
    return stats["modes"], stats["hq"]


COLUMNS = {
    "nn": (
        "model",
        "seed",
        "epoch",
        "step",
        "1-NN on z",
        "1-NN on z, random encoder",
        "1-NN on h",
        "1-NN on h, random encoder",
        "official log z / h",
        "train s",
    ),
    "grid": ("model", "seed", "modes of 25", "high-quality share"),
    "cluster": (
        "model",
        "seed",
        "epoch",
        "step",
        "cluster error (majority, fitted on train)",
        "k-means (16, pixels)",
        "cluster error (most confident, fitted on train)",
        "test MSE",
        "clusters used",
    ),
    "semi": ("model", "seed", "epoch", "step", "test error (1000 labels)", "encoder on the labels alone"),
    "dimred": (
        "model",
        "seed",
        "epoch",
        "step",
        "cluster error (majority, fitted on train)",
        "1-NN error in the 2-D code",
        "1-NN error, 2 principal components of the pixels",
        "clusters used",
    ),
    "style": (
        "model",
        "seed",
        "epoch",
        "step",
        "class_acc",
        "worst class",
        "style spread (within / between)",
        "relabel_acc (test codes × every label)",
    ),
}


TASK_CURVES = {"cluster": cluster_task, "semi": semi_task, "dimred": dimred_task, "style": style_task}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=list(TASKS), default="nn")
    ap.add_argument("--models", nargs="+", default=[])
    ap.add_argument("--seeds", nargs="+", default=["0"])
    ap.add_argument("--epochs", nargs="+", default=["1"], help="the curve's points, in epochs (nn adds epoch 0)")
    ap.add_argument("--root", default="../shared/data", help="where MNIST's IDX files are (every task but grid)")
    ap.add_argument("--out", default=None, help="also write the table to this markdown file")
    ap.add_argument(
        "--runs", default=None, help="keep the run dirs here, so that the same command continues a stopped curve"
    )
    ap.add_argument("overrides", nargs="*", help="extra `gan train` overrides for every run")
    args = benchlib.parse_args(ap, {"models": "model", "seeds": int, "epochs": int})
    models = args.models or TASKS[args.task]
    data = [] if args.task == "grid" else mnist(args.root)
    runs = Path(args.runs or tempfile.mkdtemp(prefix="bench_encoders-"))
    table = benchlib.Table(*COLUMNS[args.task])
    for model in models:
        for seed in args.seeds:
            over = [*data, f"seed={seed}", *args.overrides]
            where = runs / f"{args.task}-{model}-{seed}"
            if args.task == "nn":
                nn_task(model, seed, over, where, args.epochs, table)
            elif args.task == "grid":
                modes, hq = grid_row(model, over, where)
                table.add(model, seed, f"{modes:.0f}", f"{100 * hq:.1f} %")
            else:
                TASK_CURVES[args.task](seed, over, where, args.epochs, table)
    table.write(args.out)


if __name__ == "__main__":
    benchlib.run(main)
