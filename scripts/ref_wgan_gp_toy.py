#!/usr/bin/env python
"""A port of the WGAN-GP authors' 2-D toy run, to set beside gancli's `model=wgan_gp` on ring8 / grid25.

Written from reading igul222/improved_wgan_training `gan_toy.py` (TensorFlow), in plain PyTorch and
independent of gancli's training code: only the data (gancli's ring8 / grid25 points and batch stream,
so both runs see the same samples) and the scoring (gancli.metrics.points.mode_stats, as
scripts/bench_2d.py reports it) come from gancli. What it reproduces:

  G    2-d z ~ N(0, I) → 3 × (Linear 512, ReLU) → Linear 2
  D    2 → 3 × (Linear 512, ReLU) → Linear 1, no normalisation
  init tflib's Linear: ReLU layers' weights U(±√3·√(2/fan_in)), output layers' U(±√3·√(2/(fan_in+fan_out))),
       biases 0
  loss critic E[D(G(z))] − E[D(x)] + λ·E[(‖∇D(x̂)‖₂ − 1)²], x̂ = αx + (1 − α)G(z), α ~ U[0, 1] per sample,
       λ = 0.1; generator −E[D(G(z))]
  opt  Adam lr 1e-4, β = (0.5, 0.9), one per network
  loop 5 critic updates, each on a new real batch and new noise, then one G update on new noise;
       batch 256. (Their loop runs the G update at the top of every iteration but the first, so the
       order of updates is the same; their final 5 critic updates, which G never sees, are left out.)
  lr   constant (their code has no schedule); --decay-from F adds the record's table protocol (bench_2d's
       optimizer.lr_schedule=linear_decay, lr_decay_start=F): constant for the first F of the G steps, then
       linearly to 0 at the last

    OMP_NUM_THREADS=1 python scripts/ref_wgan_gp_toy.py --steps 2000 --seed 0
    python scripts/ref_wgan_gp_toy.py --steps 2400 --decay-from 0.5    # as scripts/bench_2d.py's table
    python scripts/ref_wgan_gp_toy.py --dataset grid25 --steps 1000 --eval-every 100

--steps counts G updates, as gancli's trainer.steps does. Not reproduced: their data scale (the ring is
divided by 1.414 and the grid by 2.828 to unit variance there; here both keep gancli's coordinates) and
TF Adam's ε placement (ε is added after the bias correction there: 1e-8 either way, a negligible shift).
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
import torch.nn as nn

from gancli.data.toy2d import grid25, ring8
from gancli.metrics.points import mode_stats

DIM = 512
LAMBDA = 0.1
CRITIC_ITERS = 5
BATCH_SIZE = 256
LR, BETAS = 1e-4, (0.5, 0.9)
DATASETS = {"ring8": (ring8, 0.01), "grid25": (grid25, 0.05)}  # builder, σ of conf/dataset/<name>.yaml


def linear(n_in: int, n_out: int, relu: bool) -> nn.Linear:
    """tflib.ops.linear.Linear with initialization='he' (before a ReLU) or the default 'glorot'."""
    layer = nn.Linear(n_in, n_out)
    std = math.sqrt(2.0 / n_in) if relu else math.sqrt(2.0 / (n_in + n_out))
    with torch.no_grad():
        layer.weight.uniform_(-std * math.sqrt(3), std * math.sqrt(3))
        layer.bias.zero_()
    return layer


def mlp(n_in: int, n_out: int) -> nn.Sequential:
    """n_in → 3 × (Linear DIM, ReLU) → Linear n_out: their Generator and Discriminator alike."""
    return nn.Sequential(
        linear(n_in, DIM, True),
        nn.ReLU(),
        linear(DIM, DIM, True),
        nn.ReLU(),
        linear(DIM, DIM, True),
        nn.ReLU(),
        linear(DIM, n_out, False),
    )


def critic_cost(D: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    cost = D(fake).mean() - D(real).mean()
    alpha = torch.rand(real.shape[0], 1)
    interpolates = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grads,) = torch.autograd.grad(D(interpolates).sum(), interpolates, create_graph=True)
    slopes = grads.pow(2).sum(1).sqrt()
    return cost + LAMBDA * (slopes - 1).pow(2).mean()


def adam(net: nn.Module) -> torch.optim.Adam:
    return torch.optim.Adam(net.parameters(), lr=LR, betas=BETAS)


def iteration(G: nn.Module, D: nn.Module, opt_g, opt_d, next_real) -> None:
    """CRITIC_ITERS critic updates, each on a new real batch (`next_real()`) and new noise, then one G
    update on new noise."""
    for _ in range(CRITIC_ITERS):
        real = next_real()
        with torch.no_grad():
            fake = G(torch.randn(real.shape[0], 2))
        opt_d.zero_grad(set_to_none=True)
        critic_cost(D, real, fake).backward()
        opt_d.step()
    for p in D.parameters():  # gen_cost's gradient goes to G's variables only
        p.requires_grad_(False)
    opt_g.zero_grad(set_to_none=True)
    (-D(G(torch.randn(real.shape[0], 2))).mean()).backward()
    opt_g.step()
    for p in D.parameters():
        p.requires_grad_(True)


def score(G: nn.Module, field, seed: int, n: int = 2500) -> dict:
    """bench_2d's evaluation: n points from noise drawn by a CPU generator seeded 10,000 + seed."""
    with torch.no_grad():
        pts = G(torch.randn(n, 2, generator=torch.Generator().manual_seed(10_000 + seed)))
    centres = torch.tensor(field.extras["centres"])
    return {**mode_stats(pts, centres, field.extras["std"]), "n_modes": len(centres)}


def line(r: dict) -> str:
    return (
        f"{r['dataset']}  seed {r['seed']}  {r['steps']} G steps: modes {r['modes']:.0f}/{r['n_modes']}  "
        f"high quality {100 * r['hq']:.1f} %  reverse KL {r['rev_kl']:.3f}  ({r['seconds']:.0f} s)"
    )


def rate(step: int, steps: int, decay_from: float | None) -> float:
    """The rate for the G step after `step` are done: LR, or with decay_from the linear decay to 0 that
    begins after decay_from · steps."""
    if decay_from is None:
        return LR
    begin = int(decay_from * steps)
    return LR if step < begin else LR * max(0.0, 1.0 - (step - begin) / max(1, steps - begin))


def train(dataset: str, steps: int, seed: int, eval_every: int = 0, decay_from: float | None = None) -> dict:
    torch.manual_seed(seed)
    build, std = DATASETS[dataset]
    source = build(n=100000, seed=1234, std=std)  # conf/dataset/<name>.yaml's points
    batches = source.stream(BATCH_SIZE, torch.device("cpu"), seed)
    G, D = mlp(2, 2), mlp(2, 1)
    opt_g, opt_d = adam(G), adam(D)
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                group["lr"] = rate(step - 1, steps, decay_from)
        iteration(G, D, opt_g, opt_d, lambda: next(batches)["x"])
        if eval_every and step % eval_every == 0 and step < steps:
            print(
                line(
                    {
                        "dataset": dataset,
                        "seed": seed,
                        "steps": step,
                        **score(G, source.spec["x"], seed),
                        "seconds": time.perf_counter() - t0,
                    }
                ),
                flush=True,
            )
    seconds = time.perf_counter() - t0
    return {
        "dataset": dataset,
        "seed": seed,
        "steps": steps,
        **score(G, source.spec["x"], seed),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000, help="G updates (each after 5 critic updates)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dataset", choices=sorted(DATASETS), default="ring8")
    ap.add_argument("--eval-every", type=int, default=0, help="also score every N G steps (0: only at the end)")
    ap.add_argument(
        "--decay-from", type=float, default=None, help="decay the rate linearly to 0 after this share of the steps"
    )
    args = ap.parse_args()
    r = train(args.dataset, args.steps, args.seed, args.eval_every, args.decay_from)
    print(line(r))
    print(json.dumps(r))


if __name__ == "__main__":
    main()
