"""The AAE reference reproduction (musyoku/adversarial-autoencoder, Chainer), run unchanged on the CPU and scored
with bench_encoders' protocols, so that `aae_cluster` and `aae_semi` can be set beside it at equal updates.

It does not import gancli: it runs in its own environment, because Chainer 7.8.1 (the last release) needs
NumPy < 2 and an old setuptools to build:

    python -m venv chainer-venv
    chainer-venv/bin/pip install "setuptools<70" wheel "numpy<2"
    chainer-venv/bin/pip install --no-build-isolation chainer==7.8.1
    git clone https://github.com/musyoku/adversarial-autoencoder <ref>

Chainer's `get_mnist` downloads MNIST; offline, `--mnist <dir with the four idx .gz files>` writes the two
npz files it reads into `--data` first (its CHAINER_DATASET_ROOT).

    chainer-venv/bin/python scripts/ref_aae_chainer.py --task cluster --ref <ref> --seed 0 --epochs 1 2 4 8 \
        --mnist <MNIST raw> --data <dir> --out cluster_ref_seed0.jsonl

The reference's training script runs as written (`--gpu-device -1`, its other defaults: batch 64, Adam 1e-4
with β1 = 0.1, gradients clipped to norm 5, N(0, 0.01) weights; `semi`: `--num-labeled-data 1000`); its
per-epoch `model.save` is the hook that scores it (and the model file is not written). `cluster`: each of the
16 clusters takes the majority label of its training members (60k), error on the 10k test images. `semi`:
the error of the categorical code on the 10k test images. An epoch is 937 updates (60,000 // 64)."""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

SCRIPTS = {"cluster": "run/unsupervised/clustering", "semi": "run/semi-supervised/classification"}


def write_chainer_mnist(raw: Path, data: Path) -> None:
    """Chainer's cached MNIST (`pfnet/chainer/mnist/{train,test}.npz`: x uint8 (N, 784), y uint8) from idx files."""
    dest = data / "pfnet" / "chainer" / "mnist"
    dest.mkdir(parents=True, exist_ok=True)
    for part, prefix in (("train", "train"), ("test", "t10k")):
        if (dest / f"{part}.npz").exists():
            continue
        with gzip.open(raw / f"{prefix}-images-idx3-ubyte.gz") as f:
            x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
        with gzip.open(raw / f"{prefix}-labels-idx1-ubyte.gz") as f:
            y = np.frombuffer(f.read(), np.uint8, offset=8)
        np.savez_compressed(dest / f"{part}.npz", x=x, y=y)


def categories(model, x: np.ndarray, chainer) -> np.ndarray:
    out = []
    with chainer.using_config("train", False), chainer.no_backprop_mode():
        for i in range(0, len(x), 1000):
            y, _ = model.encode_x_yz(x[i : i + 1000], apply_softmax_y=True)
            out.append(y.data.argmax(1))
    return np.concatenate(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", choices=sorted(SCRIPTS), required=True)
    p.add_argument("--ref", type=Path, required=True, help="a checkout of musyoku/adversarial-autoencoder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, nargs="+", required=True, help="score after these epochs; train to the last")
    p.add_argument("--data", type=Path, required=True, help="CHAINER_DATASET_ROOT")
    p.add_argument("--mnist", type=Path, help="MNIST idx .gz files, to fill --data offline")
    p.add_argument("--out", type=Path, required=True, help="one JSON line per scored epoch is appended here")
    args = p.parse_args()
    args.out, args.data = args.out.resolve(), args.data.resolve()  # before the chdir below
    if args.mnist:
        write_chainer_mnist(args.mnist, args.data)
    os.environ["CHAINER_DATASET_ROOT"] = str(args.data)
    here = (args.ref / SCRIPTS[args.task]).resolve()
    os.chdir(here)  # the reference's model.py finds its `aae` package two folders up
    sys.path.insert(0, str(here))

    import chainer  # noqa: PLC0415 - only in the Chainer environment
    import model as ref_model  # noqa: PLC0415 - the reference's, found through sys.path
    import train as ref_train  # noqa: PLC0415

    train, test = chainer.datasets.get_mnist()
    x_train, y_train = train._datasets
    x_test, y_test = test._datasets
    x_train, x_test = (x_train - 0.5) * 2, (x_test - 0.5) * 2  # the reference's data range
    score_at, done, clock = set(args.epochs), [0], [time.time()]

    def score(model, filename):
        done[0] += 1
        epoch = done[0]
        if epoch not in score_at:
            return
        row = {"task": args.task, "seed": args.seed, "epoch": epoch, "step": epoch * (60000 // 64)}
        row["train_s"] = round(time.time() - clock[0])
        test_cat = categories(model, x_test, chainer)
        if args.task == "cluster":
            train_cat = categories(model, x_train, chainer)
            label = {c: np.bincount(y_train[train_cat == c], minlength=10).argmax() for c in np.unique(train_cat)}
            predicted = np.array([label.get(c, -1) for c in test_cat])
            row["clusters_used"] = len(label)
        else:
            predicted = test_cat
        row["test_error"] = float((predicted != y_test).mean())
        line = json.dumps(row)
        print(line, flush=True)
        with args.out.open("a") as f:
            f.write(line + "\n")
        clock[0] = time.time()

    ref_model.Model.save = score
    sys.argv = ["train.py", "--gpu-device", "-1", "--total-epochs", str(max(args.epochs)), "--seed", str(args.seed)]
    sys.argv += ["--model", str(args.out.with_suffix(".none.hdf5"))]  # never written: save is the hook
    if args.task == "semi":
        sys.argv += ["--num-labeled-data", "1000"]
    ref_train.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
