"""ProGAN: the equalised learning rate, the minibatch-stddev layer, pixel norm, the fade-in (at α = 0 the grown
networks compute what the previous level's did), the growth schedule, the reals' resizing, training through
a growth transition with exact resume in the middle of a fade, and sampling at the checkpoint's level."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_same_state, compose_train, straight_and_resumed
from omegaconf import OmegaConf

from gancli.algorithms.progan import GrowthSchedule, resize_reals
from gancli.commands.sample import sample_from_config
from gancli.core.checkpoint import load_checkpoint
from gancli.core.errors import GanError
from gancli.nets.progressive import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStdDev,
    ProDiscriminator,
    ProGenerator,
    level_count,
    pixel_norm,
)
from gancli.training.run import build_trainer, plain_config

# 16 px: levels 4, 8, 16 at batches 8, 8, 4: level 0 for steps 0–1, level 1 fades over steps 2–7 and holds
# for 8–9, level 2 fades from step 10 (48 images: 12 steps)
TINY = [
    "model=progan",
    "dataset.n=64",
    "dataset.resolution=16",
    "trainer.batch_size=8",
    "model.width=4",
    "model.max_width=8",
    "model.z_dim=8",
    "model.fade_images=48",
    "model.stable_images=16",
    "trainer.steps=14",
    "trainer.log_every=1",
    "trainer.sample_every=5",
    "trainer.ckpt_every=100",
    "logger=none",
    "trainer.progress=false",
    "trainer.sample_n=8",
    "trainer.ema=0.9",
]


def test_equalised_layers_scale_their_unit_normal_weights_by_hes_constant_at_run_time():
    torch.manual_seed(0)
    conv = EqualizedConv2d(8, 16, 3)
    assert conv.scale == pytest.approx(math.sqrt(2) / math.sqrt(8 * 9))
    assert abs(conv.weight.std().item() - 1) < 0.05  # stored N(0, 1) ...
    x = torch.randn(2, 8, 5, 5)
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight * conv.scale, conv.bias, padding=1))  # ... scaled in use
    lin = EqualizedLinear(64, 32, lr_mul=0.01)
    effective = lin.weight * lin.scale
    assert abs(effective.std().item() - math.sqrt(2) / 8) < 0.01  # He's std, whatever the lr multiplier


def test_minibatch_stddev_adds_one_channel_with_the_groups_std():
    layer = MinibatchStdDev(group=2)
    const = torch.ones(4, 3, 2, 2)
    out = layer(const)
    assert out.shape == (4, 4, 2, 2) and torch.allclose(out[:, 3], torch.full((4, 2, 2), 1e-4))
    x = torch.zeros(4, 1, 1, 1)
    x[2] = x[3] = 2.0  # groups (0, 2) and (1, 3): values 0 and 2
    assert torch.allclose(layer(x)[:, 1].flatten(), torch.full((4,), 1.0), atol=1e-4)  # std of {0, 2} = 1
    with pytest.raises(GanError, match="must divide the batch"):
        MinibatchStdDev(4)(torch.ones(6, 1, 1, 1))


def test_pixel_norm_gives_each_pixel_unit_rms_features():
    y = pixel_norm(torch.randn(3, 16, 4, 4) * 7)
    assert torch.allclose(y.pow(2).mean(1), torch.ones(3, 4, 4), atol=1e-4)


@pytest.mark.parametrize("level", [1, 2, 3])
def test_at_alpha_zero_the_grown_networks_compute_the_previous_levels_output(level):
    torch.manual_seed(0)
    G, D = ProGenerator(8, 3, 32, width=4, max_width=16), ProDiscriminator(3, 32, width=4, max_width=16)
    z = torch.randn(4, 8)
    old = G(z, level - 1, 1.0)
    assert torch.allclose(G(z, level, 0.0), F.interpolate(old, scale_factor=2, mode="nearest"), atol=1e-6)
    assert not torch.allclose(G(z, level, 0.5), G(z, level, 0.0))
    x = torch.randn(4, 3, 4 * 2**level, 4 * 2**level)
    assert torch.allclose(D(x, level, 0.0), D(F.avg_pool2d(x, 2), level - 1, 1.0), atol=1e-5)


def test_the_growth_schedule_counts_images_per_stage_with_each_levels_batch():
    s = GrowthSchedule(3, fade=64, stable=32, batches=[16, 8, 4])
    assert s.starts == [0, 2, 10, 14, 30]  # 32/16; then 64/8 and 32/8; then 64/4 and 32/4
    assert [s.level_at(t) for t in (0, 1, 2, 13, 14, 999)] == [0, 0, 1, 1, 2, 2]
    assert [s.stage_at(t) for t in (1, 2, 10, 14, 30)] == [0, 1, 2, 3, 4]
    assert s.alpha_at(1) == 1.0 and s.alpha_at(2) == 0.0 and s.alpha_at(6) == pytest.approx(0.5)
    assert s.alpha_at(10) == 1.0 and s.alpha_at(14 + 8) == pytest.approx(0.5)  # level 2: 4 images a step


def test_reals_are_pooled_to_the_level_and_blended_during_a_fade():
    x = torch.randn(2, 3, 16, 16)
    at8 = F.avg_pool2d(x, 2)
    assert torch.allclose(resize_reals(x, 8, 1.0), at8)
    assert torch.allclose(resize_reals(x, 8, 0.0), F.interpolate(F.avg_pool2d(at8, 2), scale_factor=2), atol=1e-6)


def test_a_resolution_that_is_not_four_times_a_power_of_two_is_refused():
    assert level_count(64) == 5
    with pytest.raises(GanError, match="4·2\\^k.*got 28"):
        level_count(28)


@pytest.mark.slow
def test_progan_grows_resumes_mid_fade_exactly_and_samples_at_its_level(tmp_path):
    cfg = plain_config(compose_train([*TINY, "model.batch_sizes=[8,8,4]"]))
    straight, resumed = straight_and_resumed(cfg, tmp_path, stop=5)  # stopped in level 1's fade
    assert resumed.algorithm.level == 2 and resumed.algorithm.phase == 3 and straight.stream.batch_size == 4
    for key in ("nets", "optimizers", "ema"):
        assert_same_state(straight.state_dict()[key], resumed.state_dict()[key], key)
    build_trainer(copy.deepcopy(cfg), tmp_path / "mid").fit(stop_after=5)
    mid = load_checkpoint(tmp_path / "mid" / "checkpoints" / "last.pt")
    assert mid["phase"] == 1 and mid["nets"]["G"]["progress"].tolist() == pytest.approx([1.0, 1 / 3])
    base = {
        "ckpt": str(tmp_path / "straight"),
        "n": 6,
        "seed": 0,
        "nrow": 3,
        "batch_size": 4,
        "device": "cpu",
        "ema": True,
        "format": "npz",
    }
    sample_from_config(OmegaConf.create({**base, "out": str(tmp_path / "s.npz")}))
    sample_from_config(OmegaConf.create({**base, "level": 0, "out": str(tmp_path / "s0.npz")}))
    import numpy as np

    assert np.load(tmp_path / "s.npz")["images"].shape == (6, 16, 16, 3)
    with pytest.raises(GanError, match="level=5.*levels 0 to 2"):
        sample_from_config(OmegaConf.create({**base, "level": 5, "out": str(tmp_path / "bad.npz")}))


def test_progan_refuses_a_batch_list_of_the_wrong_length(tmp_path):
    with pytest.raises(GanError, match="model.batch_sizes has 2 entries.*3 levels"):
        build_trainer(plain_config(compose_train([*TINY, "model.batch_sizes=[8,8]"])), tmp_path / "run")


def test_an_unknown_model_key_is_answered_with_the_chosen_presets_keys():
    from gancli.cli.app import register_resolvers, validate_overrides

    register_resolvers()
    with pytest.raises(GanError) as info:
        validate_overrides("train", ["model=progan", "model.generator.width=3"])
    err = " ".join(str(info.value).split())
    assert "unknown config key 'model.generator'" in err and "fade_images" in err and "stable_images" in err
