"""gancli's experiment=infogan_mnist against scripts/ref_infogan_mnist.py, the independent port of
openai/InfoGAN's MNIST loop: from the same weights, batches and draws of (z, c), the two take the same
updates (D with Q, then G on a fresh draw) with the same optimizers, so what separates our code accuracy
from the paper's is not a difference in what an update computes.

Compared in float64 and without TF's 1e-8 inside the port's logs: that constant moves each gradient by
about 1e-8 of itself, and G's Adam steps amplify such differences, so that the port against itself with
and without it is 4 % apart after 3 updates. Runs are compared by their curves over seeds, not tensors."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from conftest import compose_train
from omegaconf import OmegaConf

from gancli.algorithms import build_algorithm
from gancli.core.precision import Precision
from gancli.data.base import DataSpec, Field
from gancli.training.run import plain_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import ref_infogan_mnist as ref  # noqa: E402

LAYERS = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)


def _layers(net: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in net.modules() if isinstance(m, LAYERS)]


def _gancli_and_port():
    cfg = OmegaConf.create(plain_config(compose_train(["experiment=infogan_mnist", "logger=none"])))
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    algo = build_algorithm(cfg, DataSpec({"x": Field("image", (1, 28, 28))}), cpu, Precision(None, cpu))
    G, D = ref.Generator(), ref.Discriminator()
    pairs = [*zip(_layers(G), _layers(algo.G), strict=True), *zip(_layers(D), _layers(algo.D), strict=True)]
    with torch.no_grad():  # the port starts from gancli's initial weights (its extra biases before a BN stay 0)
        for mine, theirs in pairs:
            assert type(mine) is type(theirs) and mine.weight.shape == theirs.weight.shape
            mine.weight.copy_(theirs.weight)
            if theirs.bias is not None:
                mine.bias.copy_(theirs.bias)
    return algo, G, D, pairs


def test_the_optimizers_are_the_authors():
    """D and Q together (their `d_net` scope) at 2e-4, G at 1e-3, Adam β = (0.5, 0.999), ε 1e-8."""
    algo, G, D, _ = _gancli_and_port()
    opt_g, opt_d = ref.optimizers(G, D)
    for name, net, theirs in (("G", algo.G, opt_g), ("D", algo.D, opt_d)):
        ours = algo.optimizers[name]
        assert {id(p) for g in ours.param_groups for p in g["params"]} == {id(p) for p in net.parameters()}
        for key in ("lr", "betas", "eps", "weight_decay"):
            assert ours.param_groups[0][key] == theirs.param_groups[0][key], (name, key)
    assert "q" in dict(algo.D.named_children())["heads"]  # Q's head is part of D, so D's optimizer steps it


def test_gancli_infogan_mnist_takes_the_ports_updates(monkeypatch):
    algo, G, D, pairs = _gancli_and_port()
    monkeypatch.setattr(ref, "TINY", 0.0)
    for net in (algo.G, algo.D, G, D):
        net.double()  # in place: the optimizers keep their parameters
    opt_g, opt_d = ref.optimizers(G, D)
    start = [(mine.weight.detach().clone(), theirs.weight.detach().clone()) for mine, theirs in pairs]
    drawn = []
    latent = algo.latent

    def recorded(*args, **kwargs):
        draw = {k: v.double() if v.is_floating_point() else v for k, v in latent(*args, **kwargs).items()}
        drawn.append(draw)
        return draw

    algo.latent = recorded
    algo.train_mode(True)
    G.train(), D.train()
    for step in range(3):
        x = torch.rand(32, 1, 28, 28, dtype=torch.float64) * 2 - 1  # gancli's range; the port reads [0, 1]
        drawn.clear()
        algo.train_step(lambda x=x: {"x": x}, step)
        assert len(drawn) == 2  # D's draw, then G's fresh one (experiment: g_fakes=fresh)
        ref.iteration(G, D, opt_g, opt_d, (x + 1) / 2, *drawn)
    for (mine, theirs), (w_port, w_ours) in zip(pairs, start, strict=True):
        moved_port, moved_ours = mine.weight.detach() - w_port, theirs.weight.detach() - w_ours
        assert moved_port.norm() > 0
        assert (moved_ours - moved_port).norm() / moved_port.norm() < 1e-4, type(mine).__name__
