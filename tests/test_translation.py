"""Image-to-image translation: the networks' shapes, the pool, the loss terms against their formulas, the
paired and unpaired datasets, training with exact resume, `gan translate` and test-split sampling."""

from __future__ import annotations

import copy
import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_same_state, compose_train, straight_and_resumed
from omegaconf import OmegaConf
from PIL import Image

from gancli.commands.sample import sample_from_config
from gancli.commands.translate import translate_from_config
from gancli.core.errors import GanError
from gancli.data import build_dataset
from gancli.nets.translation import ImagePool, PatchGAN, ResnetGenerator, UNet, patch_output_size, receptive_field
from gancli.training.run import build_trainer, plain_config

TINY = [
    "dataset.n=32",
    "trainer.batch_size=4",
    "trainer.steps=4",
    "trainer.log_every=1",
    "trainer.sample_every=2",
    "trainer.ckpt_every=100",
    "logger=none",
    "trainer.progress=false",
    "trainer.sample_n=4",
    "model.generator.width=4",
    "model.discriminator.width=4",
]


@pytest.mark.parametrize("resolution", [32, 64, 128, 256])
def test_the_unet_returns_its_input_shape_at_every_supported_resolution(resolution):
    G = UNet(1, 3, resolution, width=2)
    assert G(torch.randn(2, 1, resolution, resolution)).shape == (2, 3, resolution, resolution)
    with pytest.raises(GanError, match="power-of-two resolution"):
        UNet(1, 3, 48)


def test_unet_dropout_stays_on_at_test_time_where_the_depth_has_it():
    G = UNet(1, 1, 64, width=2).eval()  # 6 downs: one ngf·8 stage with dropout
    x = torch.randn(1, 1, 64, 64)
    assert not torch.equal(G(x), G(x))
    G32 = UNet(1, 1, 32, width=2).eval()  # 5 downs: none (as the reference's unet_32)
    assert torch.equal(G32(x[..., :32, :32]), G32(x[..., :32, :32]))


@pytest.mark.parametrize("resolution, n_layers", [(256, 3), (128, 3), (64, 2), (32, 1), (32, 0)])
def test_patchgan_output_size_matches_its_formula(resolution, n_layers):
    D = PatchGAN(3, width=4, n_layers=n_layers)
    side = patch_output_size(resolution, n_layers)
    assert D(torch.randn(1, 3, resolution, resolution)).shape == (1, 1, side, side)


def test_the_default_patchgan_sees_70_by_70_patches():
    assert receptive_field(3) == 70 and receptive_field(0) == 1
    D = PatchGAN(1, width=2, n_layers=3, norm="none")
    x = torch.randn(1, 1, 128, 128, requires_grad=True)
    out = D(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = (x.grad[0, 0].abs().sum(1) > 0).nonzero()
    assert rows.max() - rows.min() + 1 == 70  # what one logit depends on


def test_the_resnet_generator_keeps_the_shape():
    G = ResnetGenerator(3, 1, width=4, blocks=2)
    assert G(torch.randn(2, 3, 32, 32)).shape == (2, 1, 32, 32)


def test_the_image_pool_returns_stored_fakes_half_the_time_once_full_and_resumes_exactly():
    pool = ImagePool(4, seed=0)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: the fakes themselves
    swapped = 0
    for i in range(200):
        new = torch.full((1, 1, 1, 1), 100.0 + i)
        swapped += int(pool.query(new).item() != 100.0 + i)
    assert 70 < swapped < 130  # ≈ half, from the stored ones
    state = pool.state_dict()
    twin = ImagePool(4, seed=99)
    twin.load_state_dict(state, "cpu")
    batch = torch.randn(6, 1, 1, 1)
    assert torch.equal(pool.query(batch), twin.query(batch))


def _algo(model, dataset, tmp_path, *extra):
    return build_trainer(plain_config(compose_train([f"model={model}", f"dataset={dataset}", *TINY, *extra])), tmp_path)


def test_pix2pix_losses_are_gan_plus_100_l1_and_a_halved_d(tmp_path):
    trainer = _algo("pix2pix", "shapes_paired", tmp_path)
    algo = trainer.algorithm
    batch = next(trainer.stream)
    G, Ds = copy.deepcopy(algo.G), copy.deepcopy(algo.Ds)
    logs = algo.train_step(lambda: batch, 0)
    a, b = batch["a"], batch["b"]
    fake = G(a)
    pred_fake, pred_real = Ds[0](torch.cat([a, fake], 1)), Ds[0](torch.cat([a, b], 1))
    d = 0.5 * (
        F.binary_cross_entropy_with_logits(pred_fake, torch.zeros_like(pred_fake))
        + F.binary_cross_entropy_with_logits(pred_real, torch.ones_like(pred_real))
    )
    assert torch.allclose(logs["loss/D"], d, atol=1e-5)
    assert torch.allclose(logs["l1"], (fake - b).abs().mean(), atol=1e-5)
    assert algo.l1_weight == 100.0


def test_cyclegan_cycle_and_identity_terms_equal_their_formulas(tmp_path):
    trainer = _algo("cyclegan", "shapes_unpaired", tmp_path, "dataset.n=16")
    algo = trainer.algorithm
    batch = next(trainer.stream)
    g_ab, g_ba = copy.deepcopy(algo.nets["G_AB"]), copy.deepcopy(algo.nets["G_BA"])
    logs = algo.train_step(lambda: batch, 0)
    a, b = batch["a"], batch["b"]
    cycle = (g_ba(g_ab(a)) - a).abs().mean() + (g_ab(g_ba(b)) - b).abs().mean()
    identity = (g_ab(b) - b).abs().mean() + (g_ba(a) - a).abs().mean()
    assert torch.allclose(logs["cycle"], cycle, atol=1e-5) and torch.allclose(logs["identity"], identity, atol=1e-5)
    assert (algo.cycle_weight, algo.identity) == (10.0, 0.5) and algo.mode == "lsgan"


@pytest.mark.parametrize(
    "model, dataset, extra",
    [
        ("pix2pix", "shapes_paired", []),
        ("pix2pixhd", "shapes_paired", ["model.num_D=2", "model.discriminator.n_layers=2"]),
        ("cyclegan", "shapes_unpaired", ["dataset.n=16", "model.pool_size=3"]),
    ],
)
@pytest.mark.slow
def test_translation_models_resume_exactly_and_translate(model, dataset, extra, tmp_path):
    cfg = plain_config(compose_train([f"model={model}", f"dataset={dataset}", *TINY, *extra, "trainer.steps=5"]))
    straight, resumed = straight_and_resumed(cfg, tmp_path, stop=2)
    for key in ("nets", "optimizers", "algorithm"):
        assert_same_state(straight.state_dict()[key], resumed.state_dict()[key], key)
    ckpt = str(tmp_path / "straight" / "checkpoints" / "last.pt")
    (tmp_path / "in").mkdir()
    for i in range(3):
        Image.new("RGB", (40, 40), (80 * i, 0, 0)).save(tmp_path / "in" / f"photo{i}.jpg")
    cmd = {
        "ckpt": ckpt,
        "input": str(tmp_path / "in"),
        "out": str(tmp_path / "out"),
        "direction": None,
        "batch_size": 2,
        "device": "cpu",
        "ema": True,
    }
    translate_from_config(OmegaConf.create(cmd))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["photo0.png", "photo1.png", "photo2.png"]
    sample_from_config(
        OmegaConf.create(
            {
                "ckpt": ckpt,
                "n": 3,
                "seed": 0,
                "nrow": 3,
                "out": str(tmp_path / "s.npz"),
                "format": "npz",
                "batch_size": 2,
                "device": "cpu",
                "ema": True,
            }
        )
    )
    z = np.load(tmp_path / "s.npz")
    assert {"input", "output"} <= set(z) and z["output"].shape[0] == 3
    assert ("target" in z) == (model != "cyclegan")


def test_translate_refuses_a_wrong_direction_and_wrong_channels(tmp_path):
    _algo("pix2pix", "shapes_paired", tmp_path, "trainer.steps=1").fit()
    ckpt = str(tmp_path / "checkpoints" / "last.pt")
    np.savez(tmp_path / "x.npz", images=np.zeros((2, 32, 32, 3), np.uint8))  # pix2pix here reads 1-channel outlines
    base = {"ckpt": ckpt, "out": str(tmp_path / "o"), "batch_size": 2, "device": "cpu", "ema": True}
    with pytest.raises(GanError, match=r"\(N, H, W, 1\) uint8"):
        translate_from_config(OmegaConf.create({**base, "input": str(tmp_path / "x.npz"), "direction": None}))
    with pytest.raises(GanError, match="direction=BtoA is not one this model translates"):
        translate_from_config(OmegaConf.create({**base, "input": str(tmp_path / "x.npz"), "direction": "BtoA"}))
    assert not (tmp_path / "o").exists()  # nothing written half-way


def test_a_model_for_pairs_refuses_unpaired_data_and_images_only(tmp_path):
    with pytest.raises(GanError, match="shuffles a and b apart"):
        _algo("pix2pix", "shapes_unpaired", tmp_path)
    with pytest.raises(GanError, match="fields 'a' and 'b'"):
        _algo("cyclegan", "shapes", tmp_path)


# ------------------------------------------------------------------------------------------ folders


def _save(path, size=(24, 24), colour=(10, 200, 30), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour if mode == "RGB" else colour[0]).save(path)


def test_paired_folders_side_by_side_and_matching_names(tmp_path, caplog):
    for i in range(3):  # A|B side by side: left red, right blue
        img = Image.new("RGB", (48, 24), (255, 0, 0))
        img.paste(Image.new("RGB", (24, 24), (0, 0, 255)), (24, 0))
        (tmp_path / "side" / "train").mkdir(parents=True, exist_ok=True)
        img.save(tmp_path / "side" / "train" / f"{i}.png")
    src = build_dataset(
        OmegaConf.create(
            {
                "name": "paired_folder",
                "root": str(tmp_path / "side"),
                "split": "train",
                "resolution": 32,
                "direction": "BtoA",
            }
        )
    )
    ref = src.reference(3)
    assert ref["a"][:, 2].mean() > 0.9 and ref["b"][:, 0].mean() > 0.9  # BtoA: blue in, red out
    for i in range(2):
        _save(tmp_path / "ab" / "A" / "train" / f"{i}.png", mode="L", size=(24 + 8 * i, 24))
        _save(tmp_path / "ab" / "B" / "train" / f"{i}.png")
    with caplog.at_level(logging.WARNING):
        src = build_dataset(
            OmegaConf.create(
                {
                    "name": "paired_folder",
                    "root": str(tmp_path / "ab"),
                    "split": "train",
                    "resolution": 32,
                    "direction": "AtoB",
                }
            )
        )
    assert src.spec["a"].shape == (1, 32, 32) and src.spec["b"].shape == (3, 32, 32)
    assert "different sizes" in caplog.text
    _save(tmp_path / "ab" / "B" / "train" / "extra.png")
    with pytest.raises(GanError, match=r"same file names; 0 only in A.*1 only in B \(e.g. \['extra.png'\]\)"):
        build_dataset(
            OmegaConf.create(
                {
                    "name": "paired_folder",
                    "root": str(tmp_path / "ab"),
                    "split": "train",
                    "resolution": 32,
                    "direction": "AtoB",
                }
            )
        )
    with pytest.raises(GanError, match="direction=up is not one of"):
        build_dataset(OmegaConf.create({"name": "paired_folder", "root": str(tmp_path / "ab"), "direction": "up"}))


def test_unpaired_folders_of_different_sizes_and_an_empty_domain(tmp_path):
    for i in range(3):
        _save(tmp_path / "trainA" / f"{i}.png")
    _save(tmp_path / "trainB" / "x.png", mode="L")
    src = build_dataset(
        OmegaConf.create({"name": "unpaired_folder", "root": str(tmp_path), "split": "train", "resolution": 32})
    )
    assert src.spec.groups == (("a",), ("b",)) and src.spec["b"].shape == (1, 32, 32)
    assert len(src.reference(10)["a"]) == 3 and len(src.reference(10)["b"]) == 1
    (tmp_path / "trainB" / "x.png").unlink()
    with pytest.raises(GanError, match="trainB holds no images"):
        build_dataset(
            OmegaConf.create({"name": "unpaired_folder", "root": str(tmp_path), "split": "train", "resolution": 32})
        )


def test_a_public_set_offline_names_the_archive_and_where_to_unpack_it(tmp_path, monkeypatch):
    import urllib.request

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(GanError, match=r"facades.tar.gz and unpack it so that .*facades holds its folders"):
        build_dataset(
            OmegaConf.create({"name": "paired_folder", "root": str(tmp_path / "facades"), "fetch": "facades"})
        )
    with pytest.raises(GanError, match="not a public cyclegan set"):
        build_dataset(OmegaConf.create({"name": "unpaired_folder", "root": str(tmp_path / "x"), "fetch": "cats"}))


def test_the_embedded_real_sets_edges_to_garments_and_two_digit_styles(tmp_path):
    from test_data import fake_mnist

    fake_mnist(tmp_path / "FashionMNIST" / "raw", "train", 8, 0, True, True)
    fake_mnist(tmp_path / "MNIST" / "raw", "train", 10, 1, True, True)
    edges = build_dataset(
        OmegaConf.create({"name": "fashion_edges", "root": str(tmp_path), "split": "train", "download": False})
    )
    ref = edges.reference(8)
    assert ref["a"].shape == (8, 1, 32, 32) and set(ref["a"].unique().tolist()) <= {-1.0, 1.0}  # binary edges
    assert set(edges.spec.fields) == {"a", "b", "y"}
    styles = build_dataset(
        OmegaConf.create({"name": "mnist_styles", "root": str(tmp_path), "split": "train", "download": False})
    )
    assert styles.spec.groups == (("a", "y_a"), ("b", "y_b"))
    ref = styles.reference(10)
    assert len(ref["a"]) == 5 and len(ref["b"]) == 5


def test_pair_scores_equal_their_formulas():
    from gancli.metrics.translation import pair_scores

    target = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0)) - 0.5  # inside [−1, 1]
    same = pair_scores(target, target)
    assert same["l1"] == 0 and same["ssim"] == pytest.approx(1.0)
    shifted = pair_scores(target + 0.2, target)  # 0.1 in [0, 1]: L1 0.1, MSE 0.01, PSNR 10·log10(1/0.01)
    assert shifted["l1"] == pytest.approx(0.1, abs=1e-6)
    assert shifted["psnr"] == pytest.approx(20.0, abs=1e-3)
    assert shifted["ssim"] < 1


@pytest.mark.slow
def test_gan_eval_scores_a_paired_model_on_its_test_targets_and_refuses_pairs_for_cyclegan(tmp_path):
    import json
    import subprocess
    import sys

    _algo("pix2pix", "shapes_paired", tmp_path / "p", "trainer.steps=1").fit()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "gancli",
            "eval",
            f"ckpt={tmp_path / 'p' / 'checkpoints' / 'last.pt'}",
            "metrics=[pairs]",
            "n=8",
            "batch_size=4",
            f"out={tmp_path / 'p.json'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    values = json.loads((tmp_path / "p.json").read_text())["values"]
    assert set(values) == {"l1", "psnr", "ssim"} and 0 < values["l1"] <= 1 and values["ssim"] < 1
    _algo("cyclegan", "shapes_unpaired", tmp_path / "c", "trainer.steps=1", "dataset.n=16").fit()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "gancli",
            "eval",
            f"ckpt={tmp_path / 'c' / 'checkpoints' / 'last.pt'}",
            "metrics=[pairs]",
            "n=8",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode != 0 and "needs a paired translation model" in r.stderr and "Traceback" not in r.stderr
