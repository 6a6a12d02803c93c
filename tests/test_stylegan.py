"""StyleGAN2: demodulation, the mapping network's running average and truncation, style mixing, the lazy
intervals' optimizer rescaling, training with exact resume across R1 and path-length steps (the mean kept
in the checkpoint), a conditional StyleGAN2 by one override, and every sampling mode."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from conftest import assert_same_state, compose_train, straight_and_resumed
from omegaconf import OmegaConf

from gancli.algorithms.style_sampling import layer_ranges, parse_seeds
from gancli.algorithms.stylegan2 import path_length_penalty
from gancli.commands.sample import sample_from_config
from gancli.core.errors import GanError
from gancli.nets.stylegan2 import MappingNetwork, mix_styles, modulated_weight, truncate
from gancli.training.run import build_trainer, plain_config

TINY = [
    "model=stylegan2",
    "dataset.n=64",
    "dataset.resolution=16",
    "trainer.batch_size=4",
    "model.width=4",
    "model.max_width=8",
    "model.z_dim=8",
    "model.w_dim=8",
    "model.mapping_layers=2",
    "model.r1_every=2",
    "model.pl_every=2",
    "trainer.steps=5",
    "trainer.log_every=1",
    "trainer.sample_every=3",
    "trainer.ckpt_every=100",
    "logger=none",
    "trainer.progress=false",
    "trainer.sample_n=4",
    "trainer.ema=0.9",
]


def test_demodulated_weights_have_unit_norm_per_output_channel_and_sample():
    w = modulated_weight(torch.randn(6, 5, 3, 3), torch.rand(2, 5) + 0.5, demodulate=True)
    assert torch.allclose(w.square().sum(dim=(2, 3, 4)), torch.ones(2, 6), atol=1e-5)
    raw = modulated_weight(torch.ones(1, 2, 1, 1), torch.tensor([[2.0, 3.0]]), demodulate=False)
    assert raw.flatten().tolist() == [2.0, 3.0]  # modulation scales each input channel


def test_style_mixing_takes_w1_before_the_crossover_and_w2_after():
    w1, w2 = torch.zeros(3, 6, 2), torch.ones(3, 6, 2)
    ws = mix_styles(w1, w2, torch.tensor([2, 6, 0]))
    assert ws[0, :2].eq(0).all() and ws[0, 2:].eq(1).all()
    assert ws[1].eq(0).all() and ws[2].eq(1).all()  # num_ws: no mixing; 0: all w2


def test_truncation_pulls_w_toward_the_running_average():
    torch.manual_seed(0)  # fixed inputs: the test's outcome must not depend on the tests before it
    mapping = MappingNetwork(4, 3, num_ws=5, layers=2)
    z = torch.randn(64, 4)
    ws = mapping(z, track=True)
    assert torch.allclose(mapping.w_avg, 0.005 * ws[:, 0].mean(0), atol=1e-6)  # lerp(mean, 0, 0.995)
    avg = torch.randn(3)
    out = truncate(ws, avg, 0.0, cutoff=2)
    assert torch.allclose(out[:, :2], avg.expand(64, 2, 3)) and torch.equal(out[:, 2:], ws[:, 2:])
    assert torch.allclose(truncate(ws, avg, 0.5), (ws + avg) / 2)


def test_the_lazy_intervals_rescale_each_networks_adam(tmp_path):
    algo = build_trainer(
        plain_config(compose_train([*TINY, "model.r1_every=16", "model.pl_every=4"])), tmp_path / "run"
    ).algorithm
    g, d = algo.optimizers["G"].param_groups[0], algo.optimizers["D"].param_groups[0]
    assert g["lr"] == pytest.approx(2e-3 * 4 / 5) and g["betas"][1] == pytest.approx(0.99 ** (4 / 5))
    assert d["lr"] == pytest.approx(2e-3 * 16 / 17) and d["betas"][1] == pytest.approx(0.99 ** (16 / 17))


@pytest.mark.parametrize("decay", [0.01, 0.25])
def test_the_path_length_mean_stays_in_the_graph_as_in_the_reference(decay):
    """stylegan2-ada-pytorch: a = a₀.lerp(E ℓ, decay) is not detached, so the penalty E(ℓ − a)² sends a share
    `decay` of its gradient through a: ∂/∂ℓᵢ = 2/N·(ℓᵢ − a) − decay·2/N²·Σⱼ(ℓⱼ − a). By hand, on fixed
    lengths; the stored mean takes a's value."""
    values, a0 = [1.0, 2.0, 4.0], 1.5
    lengths = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    pl_mean = torch.tensor(a0, dtype=torch.float64)
    penalty = path_length_penalty(lengths, pl_mean, decay)
    (grad,) = torch.autograd.grad(penalty, lengths)
    n = len(values)
    a = a0 + decay * (sum(values) / n - a0)
    resid = [v - a for v in values]
    expected = [2 / n * r - decay * 2 / n**2 * sum(resid) for r in resid]
    assert pl_mean.item() == pytest.approx(a, abs=1e-12)
    assert penalty.item() == pytest.approx(sum(r * r for r in resid) / n, abs=1e-12)
    assert grad.tolist() == pytest.approx(expected, abs=1e-12)
    assert grad.tolist() != pytest.approx([2 / n * r for r in resid], abs=1e-6)  # not the detached mean's


def test_the_lazy_steps_give_every_parameter_a_gradient(tmp_path):
    """The reference's Greg adds gen_img[:, 0, 0, 0] · 0 and its Dreg real_logits · 0: every G parameter
    (the ToRGB biases, which the path length never reaches, included) and every D parameter gets a
    gradient, zero where the penalty does not reach, so Adam steps them all."""
    algo = build_trainer(plain_config(compose_train(TINY)), tmp_path / "run").algorithm
    torch.manual_seed(0)
    algo.g_reg(4, None)
    grads = {n: p.grad for n, p in algo.G.named_parameters()}
    assert all(g is not None for g in grads.values()), [n for n, g in grads.items() if g is None]
    to_rgb = [n for n in grads if re.fullmatch(r"synthesis\.to_rgb\.\d+\.bias", n)]  # the images' own biases
    assert to_rgb and all(grads[n].eq(0).all() for n in to_rgb)
    assert all(int(algo.optimizers["G"].state[p]["step"]) == 1 for p in algo.G.parameters())
    algo.d_reg(torch.randn(4, 3, 16, 16), None)
    assert all(p.grad is not None for p in algo.D.parameters())
    assert all(int(algo.optimizers["D"].state[p]["step"]) == 1 for p in algo.D.parameters())


def test_seeds_parse_as_ranges_and_lists_and_bad_ones_are_named():
    assert parse_seeds("0-3") == [0, 1, 2, 3] and parse_seeds("1,5,9") == [1, 5, 9] and parse_seeds(7) == [7]
    for bad in ("3-1", "a", "-2"):
        with pytest.raises(GanError, match="seeds="):
            parse_seeds(bad)
    assert [list(r) for r in layer_ranges(8).values()] == [[0, 1, 2], [3, 4], [5, 6, 7]]


@pytest.mark.slow
def test_stylegan2_resumes_exactly_across_lazy_steps_and_samples_every_mode(tmp_path):
    cfg = plain_config(compose_train(TINY))
    straight, resumed = straight_and_resumed(cfg, tmp_path, stop=3)
    for key in ("nets", "optimizers", "ema", "algorithm"):
        assert_same_state(straight.state_dict()[key], resumed.state_dict()[key], key)
    assert straight.algorithm.pl_mean.item() > 0
    run = tmp_path / "straight"
    base = {"ckpt": str(run), "n": 4, "seed": 0, "nrow": 2, "batch_size": 3, "device": "cpu", "ema": True}

    def draw(out, **options):
        fmt = "npz" if out.endswith(".npz") else "png"
        sample_from_config(OmegaConf.create({**base, **options, "format": fmt, "out": str(tmp_path / out)}))
        return dict(np.load(tmp_path / out)) if fmt == "npz" else None

    zero = draw("psi0.npz", seeds="0-3", trunc=0.0)
    assert all(np.array_equal(zero["images"][0], im) for im in zero["images"])  # ψ = 0: the average image
    seeded = draw("seeds.npz", seeds="2,3")
    again = draw("again.npz", seeds="3", batch_size=1)
    assert np.array_equal(seeded["images"][1], again["images"][0])  # an image is named by its seed
    assert draw("mix.npz", style_mix=True, seeds="0-5")["coarse"].shape[0] == 9  # 3 rows × 3 columns
    noisy = draw("noise.npz", noise_only=True)
    assert not np.array_equal(noisy["samples"][0], noisy["samples"][1])
    draw("grid.png", trunc=0.7, trunc_cutoff=2)


@pytest.mark.slow
def test_a_conditional_stylegan2_is_one_override_and_draws_the_asked_class(tmp_path):
    cfg = plain_config(compose_train([*TINY, "model.condition.generator=embedding", "trainer.steps=2"]))
    trainer = build_trainer(cfg, tmp_path / "run")
    trainer.fit()
    assert trainer.algorithm.G.mapping.num_classes == 5 and trainer.algorithm.D.num_classes == 5
    out = tmp_path / "c.npz"
    sample_from_config(
        OmegaConf.create(
            {
                "ckpt": str(tmp_path / "run"),
                "n": 10,
                "seed": 0,
                "nrow": 5,
                "batch_size": 4,
                "device": "cpu",
                "ema": True,
                "format": "npz",
                "out": str(out),
                "class": "all",
            }
        )
    )
    assert sorted(set(np.load(out)["labels"].tolist())) == [0, 1, 2, 3, 4]


@pytest.mark.slow
def test_stylegan2_trains_under_autocast_and_channels_last(tmp_path):
    cfg = plain_config(compose_train([*TINY, "trainer.amp=bf16", "trainer.channels_last=true", "trainer.steps=2"]))
    trainer = build_trainer(cfg, tmp_path / "run")
    summary = trainer.fit()
    assert summary["step"] == 2 and all(torch.isfinite(p).all() for p in trainer.algorithm.G.parameters())


def test_stylegan2_refuses_a_conditional_run_on_unlabelled_data(tmp_path):
    from PIL import Image

    (tmp_path / "flat").mkdir()
    for i in range(4):
        Image.new("RGB", (16, 16), (60 * i, 0, 0)).save(tmp_path / "flat" / f"{i}.png")
    with pytest.raises(GanError, match="needs class labels"):
        build_trainer(
            plain_config(
                compose_train(
                    [
                        *(o for o in TINY if o != "dataset.n=64"),
                        "dataset=image_folder",
                        f"dataset.root={tmp_path / 'flat'}",
                        "model.condition.generator=embedding",
                    ]
                )
            ),
            tmp_path / "run",
        )


# -- StyleGAN (v1): AdaIN, growth, resume, sampling ------------------------------------------------------------
SG1 = [
    "model=stylegan",
    "dataset.n=64",
    "dataset.resolution=16",
    "trainer.batch_size=4",
    "model.width=4",
    "model.max_width=8",
    "model.z_dim=8",
    "model.w_dim=8",
    "model.mapping_layers=2",
    "model.fade_images=16",
    "model.stable_images=8",
    "trainer.steps=10",
    "trainer.log_every=1",
    "trainer.sample_every=5",
    "trainer.ckpt_every=100",
    "logger=none",
    "trainer.progress=false",
    "trainer.sample_n=4",
    "trainer.ema=0.9",
]


def test_adain_gives_each_channel_the_styles_mean_and_std():
    from gancli.nets.stylegan import adain

    x = torch.randn(2, 3, 8, 8) * 5 + 2
    scale, shift = torch.tensor([[1.0, 2.0, 0.5], [3.0, 1.0, 1.0]]), torch.tensor([[0.0, -1.0, 4.0], [1.0, 1.0, 1.0]])
    y = adain(x, scale, shift)
    assert torch.allclose(y.mean(dim=(2, 3)), shift, atol=1e-5)
    assert torch.allclose(y.std(dim=(2, 3), unbiased=False), scale, atol=1e-4)


def test_the_style_synthesis_fades_in_like_progans_generator():
    import torch.nn.functional as F

    from gancli.nets.stylegan import StyleGANGenerator

    torch.manual_seed(0)
    G = StyleGANGenerator(8, 3, 16, w_dim=8, width=4, max_width=8, mapping_layers=2)
    ws = G.mapping(torch.randn(3, 8))
    old = G.synthesis(ws, "const", None, 1, 1.0)
    assert torch.allclose(G.synthesis(ws, "const", None, 2, 0.0), F.interpolate(old, scale_factor=2), atol=1e-6)


@pytest.mark.slow
def test_stylegan_grows_resumes_exactly_and_samples_its_modes(tmp_path):
    cfg = plain_config(compose_train(SG1))
    straight, resumed = straight_and_resumed(cfg, tmp_path, stop=4)  # stopped in level 1's fade
    assert straight.algorithm.level == 2
    for key in ("nets", "optimizers", "ema"):
        assert_same_state(straight.state_dict()[key], resumed.state_dict()[key], key)
    base = {
        "ckpt": str(tmp_path / "straight"),
        "n": 4,
        "seed": 0,
        "nrow": 2,
        "batch_size": 3,
        "device": "cpu",
        "ema": True,
        "format": "npz",
    }
    sample_from_config(OmegaConf.create({**base, "seeds": "0-3", "trunc": 0.0, "out": str(tmp_path / "z.npz")}))
    images = np.load(tmp_path / "z.npz")["images"]
    assert images.shape == (4, 16, 16, 3) and all(np.array_equal(images[0], im) for im in images)
    sample_from_config(OmegaConf.create({**base, "style_mix": True, "format": "png", "out": str(tmp_path / "m.png")}))
    assert (tmp_path / "m.png").exists()
