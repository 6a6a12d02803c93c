#!/usr/bin/env python
"""Image-to-image translation against the papers' ablations.

`paired` (pix2pix on fashion_edges: Fashion-MNIST edge maps → garments): per-pixel L1, PSNR and SSIM against
the test split's targets, sharpness (mean |Laplacian| of the outputs, over the targets'), and the accuracy of
a classifier of real garments on the outputs against the input's label (pix2pix's FCN-score idea); for L1 +
cGAN (the preset) and L1 alone (`model.adv_weight=0`). Anchor: pix2pix Table 1, where L1 + cGAN beats L1 alone
on the semantic score (0.66 vs 0.42 per-pixel accuracy on Cityscapes labels → photo).

`unpaired` (cyclegan on mnist_styles: digits ↔ other digits inverted and thickened): how often a classifier of
real domain-B digits gives G_AB(a) the digit of a (content kept), and how often a domain classifier takes
G_AB(a) for domain B (style changed); for the preset and without the cycle term (`model.cycle_weight=0`, which
also drops the identity term). Anchor: CycleGAN Table 4, where dropping the cycle loss loses the content.

    python scripts/bench_translation.py --task paired --root /usr/share/datasets/fashion-mnist
    python scripts/bench_translation.py --task unpaired --root ../shared/data/MNIST/raw
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import benchlib
import torch

from gancli.metrics.features import fit_classifier, predict
from gancli.metrics.reference import to_uint8
from gancli.metrics.translation import pair_scores

ARMS = {
    "paired": {"L1 + cGAN (preset)": [], "L1 alone": ["model.adv_weight=0"]},
    "unpaired": {"cycle + identity (preset)": [], "no cycle term": ["model.cycle_weight=0"]},
}


def laplacian(x: torch.Tensor) -> float:
    k = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).view(1, 1, 3, 3).repeat(x.shape[1], 1, 1, 1)
    return torch.nn.functional.conv2d(x.float(), k, groups=x.shape[1]).abs().mean().item()


def data(cfg_overrides: list[str], split: str) -> dict:
    from gancli.data import build_dataset

    cfg = benchlib.compose([*cfg_overrides, f"dataset.split={split}"]).dataset
    return build_dataset(cfg).reference(10**7)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=list(ARMS), default="paired")
    ap.add_argument("--root", required=True)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--n", type=int, default=2000, help="test images scored")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out")
    ap.add_argument("overrides", nargs="*")
    args = benchlib.parse_args(ap, {})
    root = str(Path(args.root).expanduser().resolve())
    if args.task == "paired":
        base = ["model=pix2pix", "dataset=fashion_edges", f"dataset.root={root}", "dataset.download=false"]
        table = benchlib.Table(
            "arm", "L1", "PSNR", "SSIM", "sharpness (outputs / targets)", "classifier accuracy", "steps", "time (s)"
        )
    else:
        base = ["model=cyclegan", "dataset=mnist_styles", f"dataset.root={root}", "dataset.download=false"]
        table = benchlib.Table("arm", "content kept (digit of a)", "taken for domain B", "steps", "time (s)")
    train, test = data(base, "train"), data(base, "test")
    label = "y" if args.task == "paired" else "y_b"  # the class of each domain-B image
    judge = fit_classifier(to_uint8(train["b"]), train[label], 10, epochs=3)
    judge_acc = (predict(judge, to_uint8(test["b"])) == test[label]).float().mean().item()
    if args.task == "unpaired":
        both = torch.cat([train["a"][:10000], train["b"][:10000]])
        domain = fit_classifier(
            to_uint8(both),
            torch.cat([torch.zeros(min(10000, len(train["a"]))), torch.ones(min(10000, len(train["b"])))]).long(),
            2,
            1,
        )
    print(f"classifier of real domain-B images: {100 * judge_acc:.1f} % on the test split", flush=True)
    for arm, extra in ARMS[args.task].items():
        with tempfile.TemporaryDirectory() as tmp:
            trainer, seconds = benchlib.train(
                [
                    *base,
                    f"seed={args.seed}",
                    f"trainer.steps={args.steps}",
                    "trainer.sample_every=0",
                    "trainer.ckpt_every=0",
                    *extra,
                    *args.overrides,
                ],
                Path(tmp),
            )
            algo = trainer.algorithm
            a = test["a"][: args.n]
            out = algo.translate(a, "AtoB", trainer.sampling_nets())
            if args.task == "paired":
                b = test["b"][: args.n]
                s = pair_scores(out, b)
                acc = (predict(judge, to_uint8(out)) == test["y"][: args.n]).float().mean().item()
                table.add(
                    arm,
                    f"{s['l1']:.4f}",
                    f"{s['psnr']:.2f}",
                    f"{s['ssim']:.3f}",
                    f"{laplacian(out) / laplacian(b):.2f}",
                    f"{100 * acc:.1f} %",
                    trainer.total,
                    f"{seconds:.0f}",
                )
            else:
                kept = (predict(judge, to_uint8(out)) == test["y_a"][: args.n]).float().mean().item()
                styled = (predict(domain, to_uint8(out)) == 1).float().mean().item()
                table.add(arm, f"{100 * kept:.1f} %", f"{100 * styled:.1f} %", trainer.total, f"{seconds:.0f}")
    table.write(args.out)


if __name__ == "__main__":
    benchlib.run(main)
