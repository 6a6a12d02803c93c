"""The stabilising tricks: DiffAugment, instance noise, minibatch std, label smoothing, feature matching."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gancli.algorithms.augment import DiffAugment, cutout, instance_noise, translation
from gancli.core.errors import GanError
from gancli.losses import build_loss, feature_matching
from gancli.nets.critic import MinibatchStd


def _dot_image(b: int = 64, size: int = 16) -> torch.Tensor:
    x = torch.zeros(b, 1, size, size)
    x[:, :, size // 2, size // 2] = 1.0
    return x


def test_translation_moves_content_by_at_most_one_eighth_and_fills_with_zeros():
    torch.manual_seed(0)
    x = _dot_image()
    y = translation(x)
    assert y.shape == x.shape
    assert set(y.unique().tolist()) <= {0.0, 1.0} and torch.all(y.sum((1, 2, 3)) == 1)  # shifted, never blended
    pos = y.flatten(1).argmax(1)
    dy, dx = pos // 16 - 8, pos % 16 - 8
    assert dy.abs().max() <= 2 and dx.abs().max() <= 2  # 16 px × 1/8 = 2
    assert len(set(zip(dy.tolist(), dx.tolist()))) > 10  # and it does move them


def test_cutout_zeroes_a_square_of_half_the_side():
    torch.manual_seed(0)
    x = torch.ones(256, 3, 16, 16)
    zeros = (cutout(x) == 0).all(1).sum((1, 2))  # pixels zeroed per image
    assert zeros.max() == 64  # 8 × 8 when the square is fully inside
    assert zeros.min() >= 16 and (zeros < 64).any()  # clipped at the borders, never more


def test_diffaugment_is_differentiable_and_applies_to_real_and_fake_alike():
    aug = DiffAugment(["color", "translation", "cutout"], "image")
    x = torch.randn(8, 3, 16, 16, requires_grad=True)
    aug(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    torch.manual_seed(3)
    a = aug(torch.ones(4, 3, 8, 8))
    torch.manual_seed(3)
    b = aug(torch.ones(4, 3, 8, 8))
    assert torch.equal(a, b)  # the global RNG drives it: resumable


def test_diffaugment_rejects_unknown_policies_and_non_images():
    with pytest.raises(GanError, match="cutout"):
        DiffAugment(["cutot"], "image")
    with pytest.raises(GanError, match="points"):
        DiffAugment(["translation"], "points")
    assert not DiffAugment([], "points")


def test_instance_noise_has_the_requested_sigma():
    torch.manual_seed(0)
    x = torch.zeros(200000)
    assert instance_noise(x, 0.0) is x
    assert abs(instance_noise(x, 0.3).std().item() - 0.3) < 0.005


def test_minibatch_std_matches_its_formula():
    h = torch.tensor([[0.0, 2.0], [1.0, 1.0], [2.0, 0.0], [3.0, 5.0]])
    out = MinibatchStd(2)(h)
    # groups of 2 take samples (0, 2) and (1, 3): population std per feature, then the mean over features
    g0 = (torch.tensor([0.0, 2.0]).std(unbiased=False) + torch.tensor([2.0, 0.0]).std(unbiased=False)) / 2
    g1 = (torch.tensor([1.0, 3.0]).std(unbiased=False) + torch.tensor([1.0, 5.0]).std(unbiased=False)) / 2
    assert torch.allclose(out[:, :2], h)
    assert torch.allclose(out[:, 2], torch.stack([g0, g1, g0, g1]), atol=1e-4)
    assert MinibatchStd(4)(torch.randn(6, 3)).shape == (6, 4)  # group size adapts to a batch it cannot tile


def test_one_sided_label_smoothing_changes_only_the_real_target():
    real, fake = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([-0.3, 0.7])
    loss = build_loss("nonsat")
    loss.smooth_real(0.1)
    expected = (0.9 * F.softplus(-real) + 0.1 * F.softplus(real)).mean() + F.softplus(fake).mean()
    assert torch.allclose(loss.d_loss(real, fake), expected)
    assert torch.allclose(loss.g_loss(fake), F.softplus(-fake).mean())  # G's objective untouched
    ls = build_loss("lsgan", a=0.0, b=1.0, c=1.0)
    ls.smooth_real(0.1)
    assert torch.allclose(ls.d_loss(real, fake), 0.5 * ((real - 0.9) ** 2).mean() + 0.5 * (fake**2).mean())
    with pytest.raises(GanError, match="label_smoothing"):
        build_loss("hinge").smooth_real(0.1)


def test_feature_matching_is_the_squared_distance_of_feature_means():
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    fake = torch.tensor([[0.0, 0.0], [2.0, 2.0]], requires_grad=True)
    fm = feature_matching(real, fake)
    assert math.isclose(fm.item(), (2 - 1) ** 2 + (3 - 1) ** 2)
    fm.backward()
    assert fake.grad is not None


@pytest.mark.parametrize(
    "tricks",
    [
        ["tricks=improved"],
        ["tricks=diffaugment", "tricks.instance_noise=0.1"],
    ],
)
def test_trick_bundles_train(tricks, compose_cfg, tiny_overrides, tmp_path):
    from gancli.training.run import build_trainer, plain_config

    cfg = plain_config(compose_cfg([*tiny_overrides, *tricks, "trainer.steps=3"]))
    trainer = build_trainer(cfg, tmp_path)
    s = trainer.fit()
    assert s["status"] == "finished" and all(math.isfinite(v) for v in s["scalars"].values())
    if tricks[0] == "tricks=improved":
        assert "feature_matching" in s["scalars"]
        assert trainer.algorithm.D.feature_dim == trainer.algorithm.D.body.feature_dim + 1  # the std feature


def test_pack_shows_d_consecutive_samples_side_by_side():
    from gancli.data import Field
    from gancli.nets import build_discriminator

    torch.manual_seed(0)
    D = build_discriminator({"arch": "mlp", "hidden": [8]}, Field("points", (2,)), pack=2)
    x = torch.randn(6, 2)
    logits, h = D(x)
    assert logits.shape == (3,) and h.shape == (3, 8)
    assert torch.allclose(h, D.body(x.reshape(3, 4)))  # (x0, x1), (x2, x3), (x4, x5)
    C = build_discriminator({"arch": "dcgan", "width": 4}, Field("image", (3, 16, 16)), pack=4)
    assert C(torch.randn(8, 3, 16, 16))[0].shape == (2,)
    assert C.body.body[0].in_channels == 12  # four RGB images as 12 channels


def test_pack_refuses_what_it_cannot_do(compose_cfg, tiny_overrides, tmp_path):
    from gancli.training.run import build_trainer, plain_config

    with pytest.raises(GanError, match="divide trainer.batch_size=16"):
        build_trainer(plain_config(compose_cfg([*tiny_overrides, "tricks.pack=3"])), tmp_path / "a")
    with pytest.raises(GanError, match="tricks.pack"):
        build_trainer(plain_config(compose_cfg(["model=acgan", *tiny_overrides, "tricks.pack=2"])), tmp_path / "b")
    s = build_trainer(
        plain_config(compose_cfg([*tiny_overrides, "tricks.pack=2", "trainer.steps=2"])), tmp_path / "c"
    ).fit()
    assert s["status"] == "finished" and all(math.isfinite(v) for v in s["scalars"].values())
