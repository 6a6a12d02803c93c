#!/usr/bin/env python
"""A port of openai/InfoGAN's MNIST run, to set beside gancli's `experiment=infogan_mnist`.

Written from reading the authors' TensorFlow code (`infogan/models/regularized_gan.py`,
`infogan/algos/infogan_trainer.py`, `infogan/misc/custom_ops.py`, `launchers/run_mnist_exp.py`), in plain
PyTorch and independent of gancli's training code: only the data (gancli's MNIST reader, the same 55,000
images) and the scoring (gancli.metrics' code accuracy, as scripts/bench_infogan.py reports it) come from
gancli. What it reproduces:

  latent  62-d U(−1, 1) noise, a 10-way categorical code (one-hot), two U(−1, 1) continuous codes, in that order
  G       FC 1024, BN, ReLU → FC 7·7·128, BN, ReLU → deconv 64 (4×4, /2), BN, ReLU → deconv 1 (4×4, /2), sigmoid
  D       conv 64 (4×4, /2), LReLU 0.01 → conv 128 (4×4, /2), BN, LReLU → FC 1024, BN, LReLU → FC 1 (D's logit)
  Q       on D's FC-1024 features: FC 128, BN, LReLU → FC 12 (10 logits, 2 means of unit-variance Gaussians)
  init    conv weights truncated N(0, 0.02²) (±2σ), deconv and FC weights N(0, 0.02²), biases 0, BN scales
          N(1, 0.02²), shifts 0; every layer has a bias (those before a BN cancel out)
  loss    D: −E[log σ(D(x))] − E[log(1 − σ(D(G(c, z))))] − MI;  G: −E[log σ(D(G(c, z)))] − MI, with
          MI = H(c) − E[−log Q(c | G(c, z))] over both kinds of code, weight 1 (TF's log(p + 1e-8) kept)
  opt     Adam β1 0.5: D and Q together (the `d_net` scope) at 2e-4, G at 1e-3
  loop    per update: one batch of 128 real images in [0, 1]; D's step on a fresh draw of (z, c); then G's
          step on another fresh draw (their second `sess.run` samples the prior again); 50 epochs × 100
          updates
  BN      batch statistics in training (real and fake batches through D separately), running averages with
          decay 0.9 for evaluation

    OMP_NUM_THREADS=1 python scripts/ref_infogan_mnist.py --root ../shared/data/MNIST/raw --steps 5000 \\
        --seed 0 --eval-every 500

It prints the code accuracy (c1 mapped to the majority digit on the 55,000 training images, scored on the
10,000 test images) every --eval-every updates. Not reproduced: TF's NHWC flatten order (a permutation of
the FC weights, the same function class), TF Adam's ε placement, their BN's second moving-average update
when a template is built twice (Q's and D's outputs each rebuild the shared body: evaluation statistics
only), and TF's first-epoch order of the images (theirs unshuffled, here shuffled like every later epoch).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

Z, N_CAT, N_CONT = 62, 10, 2
BATCH, LR_D, LR_G, BETAS = 128, 2e-4, 1e-3, (0.5, 0.999)
TINY = 1e-8  # their log(p + TINY)


def _init(net: nn.Module) -> nn.Module:
    """custom_ops' initialisers."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.trunc_normal_(m.weight, 0.0, 0.02, -0.04, 0.04)
            elif isinstance(m, (nn.ConvTranspose2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)
                continue
            else:
                continue
            nn.init.zeros_(m.bias)
    return net


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(Z + N_CAT + N_CONT, 1024),
            nn.BatchNorm1d(1024),
            nn.ReLU(),
            nn.Linear(1024, 7 * 7 * 128),
            nn.BatchNorm1d(7 * 7 * 128),
            nn.ReLU(),
            nn.Unflatten(1, (128, 7, 7)),
            nn.ConvTranspose2d(128, 64, 4, 2, 1),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.ConvTranspose2d(64, 1, 4, 2, 1),
        )
        _init(self)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(latent))  # MeanBernoulli: the mean image, in [0, 1]


class Discriminator(nn.Module):
    """The `d_net` scope: the shared body, D's logit and Q's head."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 64, 4, 2, 1),
            nn.LeakyReLU(0.01),
            nn.Conv2d(64, 128, 4, 2, 1),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(0.01),
            nn.Flatten(),
            nn.Linear(128 * 7 * 7, 1024),
            nn.BatchNorm1d(1024),
            nn.LeakyReLU(0.01),
        )
        self.d = nn.Linear(1024, 1)
        self.q = nn.Sequential(nn.Linear(1024, 128), nn.BatchNorm1d(128), nn.LeakyReLU(0.01), nn.Linear(128, 12))
        _init(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return torch.sigmoid(self.d(h)[:, 0]), self.q(h)


def draw(n: int) -> dict[str, torch.Tensor]:
    """The prior: z, c1 (as an index) and c2, c3."""
    return {
        "z": torch.rand(n, Z) * 2 - 1,
        "categorical": torch.randint(0, N_CAT, (n,)),
        "continuous": torch.rand(n, N_CONT) * 2 - 1,
    }


def g_input(latent: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat(
        [latent["z"], F.one_hot(latent["categorical"], N_CAT).to(latent["z"].dtype), latent["continuous"]], 1
    )


def mutual_information(q: torch.Tensor, latent: dict[str, torch.Tensor]) -> torch.Tensor:
    """Their MI estimate H(c) − E[−log Q(c | x)], discrete and continuous parts summed."""
    probs = F.softmax(q[:, :N_CAT], 1)
    onehot = F.one_hot(latent["categorical"], N_CAT).to(q.dtype)
    cat_cross = -(torch.log(probs + TINY) * onehot).sum(1).mean()
    cat_ent = -(torch.log(torch.full_like(probs, 1 / N_CAT) + TINY) * onehot).sum(1).mean()
    c, mean = latent["continuous"], q[:, N_CAT:]
    log_2pi = torch.log(torch.tensor(2 * torch.pi))
    cont_cross = (0.5 * log_2pi + torch.log(torch.tensor(1 + TINY)) + 0.5 * (c - mean) ** 2).sum(1).mean()
    cont_ent = -torch.log(torch.tensor(0.5)) * N_CONT  # U(−1, 1)'s density 1/2 per code
    return (cat_ent - cat_cross) + (cont_ent - cont_cross)


def optimizers(G: nn.Module, D: nn.Module) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    return torch.optim.Adam(G.parameters(), LR_G, BETAS), torch.optim.Adam(D.parameters(), LR_D, BETAS)


def iteration(G, D, opt_g, opt_d, real: torch.Tensor, latent_d: dict, latent_g: dict) -> None:
    """One update: D (and Q) on `real` (in [0, 1]) and G(latent_d), then G on G(latent_g)."""
    fake = G(g_input(latent_d)).detach()
    real_d, _ = D(real)
    fake_d, fake_q = D(fake)
    d_loss = -(torch.log(real_d + TINY) + torch.log(1 - fake_d + TINY)).mean()
    opt_d.zero_grad(set_to_none=True)
    (d_loss - mutual_information(fake_q, latent_d)).backward()
    opt_d.step()
    fake_d, fake_q = D(G(g_input(latent_g)))
    g_loss = -torch.log(fake_d + TINY).mean()
    opt_g.zero_grad(set_to_none=True)
    (g_loss - mutual_information(fake_q, latent_g)).backward()
    opt_g.step()  # D's gradients from this pass are dropped at its next zero_grad


class Scored:
    """What gancli.metrics' code accuracy reads: Q's category for images in the networks' [−1, 1]."""

    def __init__(self, D: nn.Module):
        self.D, self.n_cat, self.device = D, N_CAT, torch.device("cpu")

    @torch.no_grad()
    def predict_codes(self, x: torch.Tensor):
        _, q = self.D((x + 1) / 2)
        return q[:, :N_CAT].argmax(1), q[:, N_CAT:]


def mnist(root: str, split: str, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [−1, 1] (gancli's range) and labels of train[start:stop] or test[start:stop]."""
    import benchlib

    data = ["dataset=mnist", f"dataset.root={Path(root).resolve()}", f"dataset.split={split}"]
    return benchlib.labelled_tensors([*data, "dataset.download=false", f"dataset.subset=[{start},{stop}]"])


def main() -> None:
    from gancli.metrics.classes import code_accuracy

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default="../shared/data/MNIST/raw")
    ap.add_argument("--steps", type=int, default=5000, help="updates of 128 (theirs: 50 epochs × 100)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=500)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    train, test = mnist(args.root, "train", 5000, 60000), mnist(args.root, "test", 0, 10000)
    images = (train[0] + 1) / 2
    G, D = Generator(), Discriminator()
    opt_g, opt_d = optimizers(G, D)
    order, at, t0 = torch.randperm(len(images)), 0, time.perf_counter()
    for step in range(1, args.steps + 1):
        if at + BATCH > len(order):  # a new epoch, reshuffled (TF's DataSet drops the partial batch)
            order, at = torch.randperm(len(images)), 0
        real = images[order[at : at + BATCH]]
        at += BATCH
        G.train(), D.train()
        iteration(G, D, opt_g, opt_d, real, draw(BATCH), draw(BATCH))
        if step % args.eval_every == 0 or step == args.steps:
            D.eval()
            held, train_acc, digits = code_accuracy(Scored(D), train, test, 10)
            print(
                f"seed {args.seed}  step {step}: held-out {100 * held:.1f} %  train {100 * train_acc:.1f} %  "
                f"digits {digits}/10  ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
