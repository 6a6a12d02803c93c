"""Resume equivalence: stopped at step k and resumed, a run reaches exactly the weights of an uninterrupted one."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import assert_same_state, straight_and_resumed
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from gancli.cli.app import conf_dir, register_resolvers
from gancli.core.checkpoint import load_checkpoint
from gancli.training.run import build_trainer, plain_config

TRAINER = [
    "trainer.batch_size=16",
    "trainer.log_every=2",
    "trainer.sample_every=3",
    "trainer.ckpt_every=100",
    "logger=none",
    "trainer.progress=false",
    "trainer.sample_n=8",
]
IMAGES = ["dataset.n=128", "dataset.resolution=16", "model.generator.width=8", "model.discriminator.width=8"]
TINY = TRAINER + IMAGES


def config(overrides: list[str]) -> dict:
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return plain_config(compose("train", overrides=overrides))


@pytest.mark.parametrize(
    "overrides",
    [
        IMAGES
        + ["model=dcgan", "trainer.ema=0.9", "trainer.ema_rampup=0.5"],  # EMA (step-dependent decay) + BN buffers
        IMAGES + ["model=wgan_gp"],  # n_critic 5 + random interpolates
        ["model=gan", "dataset=ring8", "dataset.n=512"],  # points, MLP pair
        IMAGES
        + ["model=acgan", "tricks=diffaugment", "tricks.instance_noise=0.2"],  # labels, aux head, random augments
        IMAGES + ["model=infogan"],  # random codes, Q head
    ],
    ids=["dcgan-ema", "wgan_gp", "gan-ring8", "acgan-diffaugment", "infogan"],
)
@pytest.mark.slow
def test_stopped_and_resumed_run_matches_uninterrupted(tmp_path, overrides):
    cfg = config(TRAINER + overrides + ["trainer.steps=9"])

    straight, resumed = straight_and_resumed(cfg, tmp_path, stop=4)

    assert resumed.step == straight.step == 9
    for key in ("nets", "optimizers", "ema"):
        assert_same_state(straight.state_dict()[key], resumed.state_dict()[key], key)
    # and it did train: weights moved away from their initial values
    fresh = build_trainer(copy.deepcopy(cfg), tmp_path / "fresh")
    g0, g9 = fresh.algorithm.nets["G"].state_dict(), straight.algorithm.nets["G"].state_dict()
    assert any(not torch.equal(g0[k], g9[k]) for k in g0 if g0[k].is_floating_point())


def test_metrics_after_resume_have_no_duplicate_steps(tmp_path):
    import json

    cfg = config(TINY + ["trainer.steps=8", "trainer.log_every=1"])
    first = build_trainer(copy.deepcopy(cfg), tmp_path)
    first.fit(stop_after=3)
    # a crash after the checkpoint would leave later lines: simulate them
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 4, "loss/D": 0.0}) + "\n")
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    resumed = build_trainer(state["config"], tmp_path)
    resumed.load_state_dict(state)
    resumed.fit()
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 9))
