"""gancli's model=wgan_gp on ring8 against scripts/ref_wgan_gp_toy.py, the independent port of the WGAN-GP
authors' toy loop: from the same weights, batches and random draws, the two take the same updates."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from conftest import compose_train

from gancli.training.run import build_trainer, plain_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import ref_wgan_gp_toy as ref  # noqa: E402


def _linears(net: torch.nn.Module) -> list[torch.nn.Linear]:
    return [m for m in net.modules() if isinstance(m, torch.nn.Linear)]


def test_gancli_wgan_gp_on_ring8_takes_the_ports_updates(tmp_path):
    cfg = plain_config(
        compose_train(
            [
                "model=wgan_gp",
                "dataset=ring8",
                "dataset.n=2048",
                "trainer.batch_size=64",
                "logger=none",
                "trainer.progress=false",
            ]
        )
    )
    trainer = build_trainer(cfg, tmp_path)
    algo = trainer.algorithm
    G, D = ref.mlp(2, 2), ref.mlp(2, 1)
    ours = {"G": _linears(algo.G), "D": _linears(algo.D.body) + [algo.D.out]}
    with torch.no_grad():  # the port starts from gancli's initial weights
        for net, name in ((G, "G"), (D, "D")):
            for mine, theirs in zip(_linears(net), ours[name], strict=True):
                mine.weight.copy_(theirs.weight)
                mine.bias.copy_(theirs.bias)
    opt_g, opt_d = ref.adam(G), ref.adam(D)
    # the port reads the same batches, in the same order, from a stream seeded as the trainer's
    stream = trainer.source.stream(64, torch.device("cpu"), trainer.seed)
    for step in range(3):
        torch.manual_seed(100 + step)  # the same noise and interpolation draws, in the same order
        algo.train_step(trainer._next_batch, step)
        torch.manual_seed(100 + step)
        ref.iteration(G, D, opt_g, opt_d, lambda: next(stream)["x"])
    for net, name in ((G, "G"), (D, "D")):
        for mine, theirs in zip(_linears(net), ours[name], strict=True):
            torch.testing.assert_close(mine.weight, theirs.weight, rtol=1e-4, atol=1e-6)
            torch.testing.assert_close(mine.bias, theirs.bias, rtol=1e-4, atol=1e-6)


def test_the_ports_decay_is_the_schedule_bench_2d_trains_gancli_with():
    """--decay-from 0.5 sets the rate gancli's linear_decay gives after each G step (the table's protocol)."""
    from gancli.training.schedules import linear_decay

    factor = linear_decay(2400, 0.5)
    for step in (0, 1, 1199, 1200, 1201, 1800, 2399, 2400):
        assert ref.rate(step, 2400, 0.5) == ref.LR * factor(step)
    assert ref.rate(2000, 2400, None) == ref.LR
    assert ref.rate(1800, 2400, 0.5) == ref.LR / 2


def test_gancli_draws_the_ports_initial_weights(tmp_path):
    """The same distribution per layer: He-uniform before a ReLU, Glorot-uniform at the outputs, biases 0
    (the equal-updates test above copies the weights, so it would not see a different initialisation)."""
    cfg = plain_config(
        compose_train(["model=wgan_gp", "dataset=ring8", "dataset.n=256", "logger=none", "trainer.progress=false"])
    )
    algo = build_trainer(cfg, tmp_path).algorithm
    torch.manual_seed(0)
    port = {"G": _linears(ref.mlp(2, 2)), "D": _linears(ref.mlp(2, 1))}
    ours = {"G": _linears(algo.G), "D": _linears(algo.D.body) + [algo.D.out]}
    for name in ("G", "D"):
        for mine, theirs in zip(ours[name], port[name], strict=True):
            assert mine.weight.shape == theirs.weight.shape and not mine.bias.any() and not theirs.bias.any()
            bound = theirs.weight.abs().max()
            assert bound * 0.95 < mine.weight.abs().max() <= bound * 1.01
            torch.testing.assert_close(mine.weight.std(), theirs.weight.std(), rtol=0.06, atol=0)
