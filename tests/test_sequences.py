"""Sequence GANs (RGAN / RCGAN): networks, the per-step loss, the sequence datasets and the user's files,
the line-plot panels, sampling in the data's units, the sequence metrics, and resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_same_state, compose_train, straight_and_resumed
from omegaconf import OmegaConf
from test_data import fake_mnist

from gancli.commands.sample import sample_from_config
from gancli.core.errors import GanError
from gancli.data import Field, build_dataset
from gancli.data.sequences import scale_to_unit, unscale, windows
from gancli.metrics.sequences import mmd2_unbiased
from gancli.nets.recurrent import RecurrentCritic, RecurrentGenerator
from gancli.training.run import build_trainer, plain_config

TINY = [
    "trainer.batch_size=8",
    "trainer.steps=4",
    "trainer.log_every=1",
    "trainer.sample_every=2",
    "trainer.ckpt_every=100",
    "logger=none",
    "trainer.progress=false",
    "trainer.sample_n=4",
    "model.generator.hidden=8",
    "model.discriminator.hidden=8",
    "model.n_critic=2",
]


def sample_cfg(**kw):
    base = {
        "ckpt": "",
        "n": 6,
        "seed": 0,
        "nrow": 3,
        "out": "",
        "format": "png",
        "batch_size": 4,
        "device": "cpu",
        "ema": True,
    }
    return OmegaConf.create({**base, **kw})


def test_recurrent_networks_map_noise_per_step_to_sequences_and_sequences_to_per_step_logits():
    field = Field("sequence", (30, 3))
    G = RecurrentGenerator(field, z_dim=5, hidden=16, num_classes=4, condition="onehot")
    D = RecurrentCritic(field, hidden=16, num_classes=4, bidirectional=True)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    x = G(torch.randn(6, 30, 5), labels)
    assert x.shape == (6, 30, 3) and x.abs().max() <= 1
    logits, h = D(x, labels)
    assert logits.shape == (6, 30) and h.shape == (6, 32)
    gru = RecurrentGenerator(field, z_dim=5, hidden=16, cell="gru", layers=2, tanh=False)
    assert isinstance(gru.rnn, torch.nn.GRU) and gru(torch.randn(2, 30, 5)).shape == (2, 30, 3)


def test_the_losses_are_the_cross_entropy_averaged_over_every_time_step(tmp_path):
    """The code's D loss: mean over steps, then over the batch, of −log σ(D(x)_t) − log(1 − σ(D(G(z))_t))."""
    algo = build_trainer(
        plain_config(compose_train(["model=rgan", "dataset=sines", "dataset.n=64", *TINY])), tmp_path
    ).algorithm
    real_logits, fake_logits = torch.randn(8, 30), torch.randn(8, 30)
    expected = (F.softplus(-real_logits).mean(1) + F.softplus(fake_logits).mean(1)).mean()
    assert torch.allclose(algo.loss.d_loss(real_logits, fake_logits), expected)
    assert torch.allclose(algo.loss.g_loss(fake_logits), F.softplus(-fake_logits).mean(1).mean())
    assert algo.latent(3)["z"].shape == (3, 30, 5)  # fresh noise at every step


def test_scaling_round_trips_and_windows_cover_the_series():
    x = torch.randn(10, 7, 3) * torch.tensor([1.0, 10.0, 0.1]) + torch.tensor([0.0, 5.0, -3.0])
    scaled, scale = scale_to_unit(x)
    assert scaled.min() >= -1 - 1e-6 and scaled.max() <= 1 + 1e-6
    assert torch.allclose(unscale(scaled, Field("sequence", (7, 3), extras={"scale": scale})), x, atol=1e-5)
    series = torch.arange(10.0).view(10, 1)
    w = windows(series, 4, 3)
    assert w[:, :, 0].tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    with pytest.raises(GanError, match="window=11 is longer than the series"):
        windows(series, 11, 1)


def test_sines_follow_the_papers_formula_and_bands_label_their_frequency():
    source = build_dataset(
        OmegaConf.create({"name": "sines", "n": 500, "length": 30, "channels": 2, "bands": 3, "seed": 0})
    )
    batch = source.reference(500)
    x, y = batch["x"], batch["y"]
    assert x.shape == (500, 30, 2) and x.abs().max() <= 0.9 + 1e-6
    spectrum = torch.fft.rfft(x[:, :, 0], dim=1).abs()
    peak = spectrum[:, 1:].argmax(1) + 1  # cycles per sequence ≈ f
    assert peak.min() >= 1 and peak.max() <= 5
    assert source.spec["y"].num_classes == 3 and set(y.tolist()) == {0, 1, 2}
    assert peak[y == 0].float().mean() < peak[y == 2].float().mean()


def test_smooth_signals_are_gaussian_process_draws_with_the_rbf_covariance():
    source = build_dataset(
        OmegaConf.create(
            {"name": "smooth", "n": 4000, "length": 10, "channels": 1, "length_scale": 2.0, "variance": 0.2, "seed": 0}
        )
    )
    x = source.reference(4000)["x"][:, :, 0].double()
    cov = torch.cov(x.T)
    t = torch.arange(10.0, dtype=torch.float64)
    expected = 0.2 * torch.exp(-((t[:, None] - t[None, :]) ** 2) / 8)
    assert torch.allclose(cov, expected, atol=0.02)


def test_mnist_as_sequences_in_each_layout(tmp_path):
    fake_mnist(tmp_path / "MNIST" / "raw", "train", 12, 0, True, True)
    for layout, shape in (("flat14", (196, 1)), ("rows14", (14, 14)), ("rows", (28, 28))):
        source = build_dataset(
            OmegaConf.create(
                {"name": "mnist_seq", "root": str(tmp_path), "split": "train", "layout": layout, "download": False}
            )
        )
        assert source.spec["x"].shape == shape and source.spec["y"].num_classes == 10
    source = build_dataset(
        OmegaConf.create(
            {
                "name": "mnist_seq",
                "root": str(tmp_path),
                "split": "train",
                "layout": "flat14",
                "digits": [0, 1, 2],
                "download": False,
            }
        )
    )
    assert source.spec["y"].class_names == ("0", "1", "2") and len(source.reference(100)["x"]) == 5  # 0, 1, 2, 10, 11


# ------------------------------------------------------------------------------------------ the user's files


def test_a_file_of_sequences_trains_and_samples_come_back_in_its_units(tmp_path):
    g = np.random.default_rng(0)
    x = 100 + 20 * g.standard_normal((40, 12, 2))  # far outside [-1, 1]
    np.savez(tmp_path / "ts.npz", x=x, labels=np.arange(40) % 2)
    cfg = plain_config(
        compose_train(["model=rcgan", "dataset=timeseries_file", f"dataset.path={tmp_path / 'ts.npz'}", *TINY])
    )
    trainer = build_trainer(cfg, tmp_path / "run")
    assert trainer.spec["x"].extras["scale"]["min"][0] == pytest.approx(x[..., 0].min(), rel=1e-5)
    trainer.fit()
    ckpt = str(tmp_path / "run" / "checkpoints" / "last.pt")
    sample_from_config(sample_cfg(ckpt=ckpt, format="npy", n=10, out=str(tmp_path / "s.npy")))
    s = np.load(tmp_path / "s.npy")
    assert s.shape == (10, 12, 2) and x.min() - 1e-3 <= s.min() and s.max() <= x.max() + 1e-3 and s.mean() > 50
    sample_from_config(sample_cfg(ckpt=ckpt, format="csv", n=3, out=str(tmp_path / "s.csv"), **{"class": 1}))
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0] == "sample,step,ch0,ch1,labels" and len(lines) == 1 + 3 * 12 and lines[1].endswith(",1")
    sample_from_config(sample_cfg(ckpt=ckpt, format="npz", n=4, out=str(tmp_path / "s.npz")))
    assert np.load(tmp_path / "s.npz")["sequences"].shape == (4, 12, 2)
    with pytest.raises(GanError, match="png_dir writes one image per sample"):
        sample_from_config(sample_cfg(ckpt=ckpt, format="png_dir", out=str(tmp_path / "d")))


def test_one_long_csv_series_is_cut_into_windows(tmp_path):
    rows = "\n".join(f"{t},{2 * t}" for t in range(50))
    (tmp_path / "s.csv").write_text("a,b\n" + rows + "\n")
    source = build_dataset(
        OmegaConf.create(
            {"name": "timeseries_file", "path": str(tmp_path / "s.csv"), "window": 10, "stride": 5, "normalise": False}
        )
    )
    x = source.reference(100)["x"]
    assert x.shape == (9, 10, 2) and x[1, 0].tolist() == [5.0, 10.0]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: np.save(p / "f.npy", np.zeros((2, 3, 4, 5))), r"shape \(2, 3, 4, 5\)"),
        (
            lambda p: np.save(p / "f.npy", np.array([[[1.0], [np.nan]], [[np.inf], [0.0]]])),
            r"2 NaN or infinite.*\(0, 1, 0\)",
        ),
        (lambda p: np.save(p / "f.npy", np.zeros((20, 2))), "dataset.window=<steps>"),
        (lambda p: np.savez(p / "f.npz", x=np.zeros((5, 4, 1)), labels=np.zeros(3)), "3 labels for 5 sequence"),
        (lambda p: (p / "f.csv").write_text("time,value\n1,2\nabc,def\n"), "line 3 is not numeric"),
        (lambda p: (p / "f.csv").write_text("only,a,header\n"), "no numeric rows"),
    ],
)
def test_a_bad_file_is_one_clear_message(tmp_path, make, message):
    make(tmp_path)
    path = next(tmp_path.glob("f.*"))
    with pytest.raises(GanError, match=message):
        build_dataset(OmegaConf.create({"name": "timeseries_file", "path": str(path), "window": None, "stride": None}))


def test_window_longer_than_the_series_is_refused(tmp_path):
    np.save(tmp_path / "f.npy", np.zeros((20, 2)))
    with pytest.raises(GanError, match="window=30 is longer"):
        build_dataset(OmegaConf.create({"name": "timeseries_file", "path": str(tmp_path / "f.npy"), "window": 30}))


# ------------------------------------------------------------------------------------------ training, metrics


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=rgan", "dataset=sines", "dataset.n=64"],
        ["model=rcgan", "dataset=sines", "dataset.n=64", "dataset.bands=3", "trainer.ema=0.9"],
        ["model=rgan", "dataset=smooth", "dataset.n=64", "model.generator.cell=gru", "model.discriminator.cell=gru"],
        ["model=rgan", "dataset=sines", "dataset.n=64", "loss=wgan_gp", "tricks.instance_noise=0.1"],
    ],
    ids=["rgan-sines", "rcgan-sines-ema", "rgan-smooth-gru", "rgan-wgan_gp"],
)
@pytest.mark.slow
def test_sequence_families_resume_exactly_and_draw_line_plots(overrides, tmp_path):
    cfg = plain_config(compose_train([*TINY, "trainer.steps=5", *overrides]))
    straight, resumed = straight_and_resumed(cfg, tmp_path, stop=2)
    for key in ("nets", "optimizers", "ema"):
        assert_same_state(straight.state_dict()[key], resumed.state_dict()[key], key)
    assert (tmp_path / "straight" / "final.png").stat().st_size > 1000
    ckpt = str(tmp_path / "straight" / "checkpoints" / "last.pt")
    sample_from_config(sample_cfg(ckpt=ckpt, out=str(tmp_path / "s.png")))
    assert (tmp_path / "s.png").is_file()


def test_rgan_refuses_what_needs_images_or_a_per_sample_head(tmp_path):
    for extra, message in (
        (["tricks.diffaugment=[translation]"], "augments images"),
        (["tricks.pack=2"], "packing"),
        (["model.discriminator.arch=dcgan"], "arch=recurrent"),
        (["dataset=shapes"], "trains on sequences"),
    ):
        with pytest.raises(GanError, match=message):
            build_trainer(
                plain_config(compose_train(["model=rgan", "dataset=sines", "dataset.n=64", *TINY, *extra])), tmp_path
            )


def test_mmd_of_a_sample_with_itself_is_near_zero_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 10, 2, generator=g)
    y = torch.randn(300, 10, 2, generator=g)
    same, sigma = mmd2_unbiased(x, y)
    assert abs(same) < 5e-3 and sigma > 0
    shifts = [mmd2_unbiased(x, y + s, sigma)[0] for s in (0.2, 0.5, 1.0)]
    assert shifts[0] < shifts[1] < shifts[2] and shifts[0] > same


@pytest.mark.slow
def test_sequence_metrics_score_a_conditional_model(tmp_path):
    from gancli.metrics import evaluate
    from gancli.metrics.suite import model_context

    cfg = plain_config(compose_train([*TINY, "model=rcgan", "dataset=sines", "dataset.n=300", "dataset.bands=2"]))
    trainer = build_trainer(cfg, tmp_path)
    trainer.fit()
    settings = OmegaConf.create(
        {
            "metrics": ["mmd", "tstr", "disc", "pred"],
            "n": 60,
            "reference_n": 300,
            "seed": 0,
            "batch_size": 30,
            "features": "auto",
            "cache_dir": str(tmp_path),
            "inception_weights": None,
            "classifier_epochs": 1,
            "kid_subsets": 1,
            "kid_subset_size": 2,
        }
    )
    report = evaluate(model_context(trainer.algorithm, cfg["dataset"], settings, torch.device("cpu")))
    v = report.values
    assert set(v) == {"mmd", "tstr", "trts", "trtr", "disc", "pred"}
    assert 0 <= v["tstr"] <= 1 and v["trtr"] > 0.6 and 0 <= v["disc"] <= 0.5 and math.isfinite(v["pred"])
    assert report.floor["mmd"] < v["mmd"]  # real against held-out real: the floor


def test_rcgan_trains_on_mnist_as_sequences_and_logs_mmd_while_training(tmp_path):
    import json

    fake_mnist(tmp_path / "data" / "MNIST" / "raw", "train", 60, 0, True, True)
    fake_mnist(tmp_path / "data" / "MNIST" / "raw", "t10k", 30, 1, True, True)
    cfg = plain_config(
        compose_train(
            [
                *TINY,
                "model=rcgan",
                "dataset=mnist_seq",
                f"dataset.root={tmp_path / 'data'}",
                "dataset.download=false",
                "dataset.layout=rows14",
                "eval.every=2",
                "eval.n=20",
                "eval.reference_n=60",
                f"eval.cache_dir={tmp_path / 'cache'}",
            ]
        )
    )
    trainer = build_trainer(cfg, tmp_path / "run")
    summary = trainer.fit()
    assert summary["status"] == "finished" and "eval/mmd" in summary["metrics"]
    lines = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [ln["step"] for ln in lines if "eval/mmd" in ln] == [2, 4]
    ckpt = str(tmp_path / "run" / "checkpoints" / "last.pt")
    sample_from_config(sample_cfg(ckpt=ckpt, format="npz", n=10, out=str(tmp_path / "s.npz"), **{"class": "all"}))
    z = np.load(tmp_path / "s.npz")
    # rcgan on mnist_seq takes the authors' MNIST settings: digits 0-2 (conf/model_dataset/rcgan_mnist_seq.yaml)
    assert z["sequences"].shape == (10, 14, 14) and sorted(set(z["labels"].tolist())) == [0, 1, 2]


# ------------------------------------------------------------------------------------------ the authors' settings


def test_g_steps_updates_g_that_many_times_per_d_update_each_on_fresh_noise(tmp_path):
    """RCGAN's MNIST code: one D round, then two G rounds; model.g_steps=2 with model.n_critic=1."""
    cfg = plain_config(
        compose_train(
            [
                "model=rcgan",
                "dataset=sines",
                "dataset.n=64",
                "dataset.bands=2",
                *TINY,
                "model.n_critic=1",
                "model.g_steps=2",
                "model.g_fakes=reuse",
                "trainer.steps=3",
            ]
        )
    )
    trainer = build_trainer(cfg, tmp_path)
    algo = trainer.algorithm
    counts = {"G": 0, "D": 0, "G forward": 0}
    for name, opt in algo.optimizers.items():
        opt.register_step_post_hook(lambda *_, name=name: counts.__setitem__(name, counts[name] + 1))
    algo.G.register_forward_hook(
        lambda *_: counts.__setitem__("G forward", counts["G forward"] + torch.is_grad_enabled())
    )
    trainer.fit(stop_after=3)
    # each iteration: one D update; G updated on the D step's fakes, then on a fresh draw (G forwards with grad)
    assert counts["D"] == 3 and counts["G"] == 6 and counts["G forward"] == 3 * 2
    with pytest.raises(GanError, match="model.g_steps"):
        build_trainer(
            plain_config(compose_train(["model=rgan", "dataset=sines", "dataset.n=64", *TINY, "model.g_steps=0"])),
            tmp_path / "bad",
        )


def test_the_recurrent_networks_start_as_the_authors_tensorflow_code_does():
    """G: every LSTM gate bias 1.0 (their cell's bias_start) plus TF's forget_bias 1.0 on the forget gate; D: bias
    0 plus forget_bias; output layers N(0, 1) cut at ±2; recurrent weights Glorot-uniform over [x, h] → gates."""
    torch.manual_seed(0)
    field = Field("sequence", (14, 14))
    G = RecurrentGenerator(field, z_dim=3, hidden=100, num_classes=3)
    D = RecurrentCritic(field, hidden=100, num_classes=3, bidirectional=True)
    gates = lambda b: b.view(4, 100)  # noqa: E731 (PyTorch order: i, f, g, o)
    g_bias = gates(G.rnn.bias_ih_l0 + G.rnn.bias_hh_l0)
    assert torch.equal(g_bias[1], torch.full((100,), 2.0))  # forget gate: 1.0 + forget_bias 1.0
    assert torch.equal(g_bias[[0, 2, 3]], torch.ones(3, 100))
    for suffix in ("l0", "l0_reverse"):
        d_bias = gates(getattr(D.rnn, f"bias_ih_{suffix}") + getattr(D.rnn, f"bias_hh_{suffix}"))
        assert torch.equal(d_bias[1], torch.ones(100)) and torch.equal(d_bias[[0, 2, 3]], torch.zeros(3, 100))
    for out in (G.out, D.out):
        w = torch.cat([out.weight.flatten(), out.bias])
        assert w.abs().max() <= 2 and 0.7 < w.std() < 1.1  # TF's truncated_normal_initializer()
    bound = (6 / (3 + 3 + 100 + 400)) ** 0.5  # [z, class, h] → 4 gates
    for w in (G.rnn.weight_ih_l0, G.rnn.weight_hh_l0):
        assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
    plain = RecurrentGenerator(field, z_dim=3, hidden=100, init="torch")
    assert plain.out.weight.abs().max() <= 0.1 and plain.rnn.bias_ih_l0.abs().max() <= 0.1  # PyTorch's U(±1/√h)
    with pytest.raises(GanError, match="init='keras'"):
        RecurrentCritic(field, init="keras")


def test_the_min_max_stretch_maps_each_image_onto_exactly_minus_one_to_one():
    from gancli.data.sequences import minmax_stretch

    x = torch.rand(5, 28, 28) * torch.tensor([0.1, 1.0, 2.0, 0.5, 3.0]).view(5, 1, 1) - 0.7
    x[4] = 0.3  # a constant image: all −1, as bytescale
    s = minmax_stretch(x)
    assert torch.equal(s[:4].amin((1, 2)), -torch.ones(4, dtype=s.dtype))
    assert torch.equal(s[:4].amax((1, 2)), torch.ones(4, dtype=s.dtype))
    assert torch.equal(s[4], -torch.ones(28, 28, dtype=s.dtype))


def test_mnist_is_resized_as_the_authors_do_a_stretch_then_lanczos():
    """A faint square (−0.5 on −0.8) comes out at full contrast: 2 × 2 means keep it faint, the authors'
    resizing stretches each image to 0–255 first, then resamples (Lanczos keeps the flat parts flat)."""
    from gancli.data.sequences import resize_lanczos

    img = torch.full((1, 28, 28), -0.8)
    img[0, 6:22, 6:22] = -0.5
    out = resize_lanczos(img, 14)
    assert out.shape == (1, 14, 14) and out.min() >= -1 and out.max() <= 1
    assert out[0, 7, 7] == 1 and out[0, 0, 0] == -1  # the square's middle, the background
    assert torch.all((out * 255 + 255) / 2 == ((out * 255 + 255) / 2).round())  # 8-bit values, as imresize's
    pooled = F.avg_pool2d(img.unsqueeze(1), 2)[0, 0]
    assert pooled[7, 7] == pytest.approx(-0.5) and pooled.max() < -0.4


def test_mnist_seq_parts_are_the_authors_60_20_20_split_of_the_digits_kept(tmp_path):
    fake_mnist(tmp_path / "MNIST" / "raw", "train", 60, 0, True, True)  # digits 0-2: 18 images

    def part(name, **kw):
        cfg = {"name": "mnist_seq", "root": str(tmp_path), "download": False, "digits": [0, 1, 2], "part": name, **kw}
        return build_dataset(OmegaConf.create(cfg)).reference(100)["x"]

    every, parts = part("all"), {p: part(p) for p in ("train", "vali", "test")}
    assert every.shape == (18, 14, 14)  # rows14 is the default
    assert [len(parts[p]) for p in ("train", "vali", "test")] == [11, 3, 4]  # ceil(60 %), rest, ceil(20 %)
    together = torch.cat(list(parts.values()))
    assert sorted(map(tuple, together.flatten(1).tolist())) == sorted(map(tuple, every.flatten(1).tolist()))
    assert not torch.equal(part("train", part_seed=1), parts["train"])
    with pytest.raises(GanError, match="dataset.part='half'"):
        part("half")


def test_rcgan_on_mnist_seq_takes_the_authors_mnist_settings_and_on_sines_keeps_the_preset():
    mnist = compose_train(["model=rcgan", "dataset=mnist_seq"])
    assert mnist.recipe == "rcgan_mnist_seq"
    assert (mnist.model.z_dim, mnist.model.n_critic, mnist.model.g_steps) == (3, 1, 2)
    assert (mnist.dataset.layout, list(mnist.dataset.digits), mnist.dataset.part) == ("rows14", [0, 1, 2], "train")
    assert mnist.trainer.steps == 25212 and mnist.trainer.batch_size == 28  # 191 epochs of their loop
    assert compose_train(["model=rcgan", "dataset=mnist_seq", "model.z_dim=5"]).model.z_dim == 5  # overridable
    for dropped in (["model=rcgan", "dataset=mnist_seq", "~model_dataset"], ["model=rgan", "dataset=mnist_seq"]):
        cfg = compose_train(dropped)
        assert cfg.recipe is None and cfg.model.n_critic == 5 and cfg.dataset.part == "all"
    sines = compose_train(["model=rcgan", "dataset=sines", "dataset.bands=3"])
    assert sines.recipe is None and (sines.model.z_dim, sines.model.n_critic, sines.model.g_steps) == (5, 5, 1)
    rgan = compose_train(["model=rgan", "dataset=sines"])
    assert rgan.recipe == "rgan_sines" and rgan.dataset.n == 8400 and rgan.trainer.steps == 5900
    assert rgan.model.generator.init == rgan.model.discriminator.init == "torch"  # measured: theirs saturates G
    assert rgan.model.generator.hidden == 100 and rgan.model.discriminator.cell == "lstm"  # merged, not replaced
    # their checkpoint choice: the lowest validation MMD² of 4,984 samples after each epoch past their tenth
    assert (rgan.eval.every, rgan.eval.best, rgan.eval.best_after, rgan.eval.n) == (59, "mmd_vali", 649, 4984)
    assert mnist.eval.best is None and sines.eval.every == 0  # other data keeps the defaults
    assert mnist.model.generator.init == mnist.model.discriminator.init == "tf"  # their MNIST run keeps theirs


def test_the_authors_mmd_estimates_and_their_variance():
    from gancli.metrics.sequences import mix_rbf_mmd2_and_ratio

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(12, 3, 2, generator=g).double(), torch.randn(12, 3, 2, generator=g).double() + 0.3
    sigmas = torch.tensor([0.7, 3.0], dtype=torch.float64)
    k = lambda a, b: sum(torch.exp(-((a - b) ** 2).sum() / (2 * s**2)) for s in sigmas)  # noqa: E731
    m = 12
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    unbiased = (kxx + kyy) / (m * (m - 1)) - 2 * kxy / m**2
    biased = (kxx + kyy + 2 * m * 2) / m**2 - 2 * kxy / m**2  # the diagonal: k(a, a) = 2
    assert mix_rbf_mmd2_and_ratio(x, y, sigmas)[0].item() == pytest.approx(unbiased.item(), rel=1e-7)
    assert mix_rbf_mmd2_and_ratio(x, y, sigmas, "biased")[0].item() == pytest.approx(biased.item(), rel=1e-7)
    code = mix_rbf_mmd2_and_ratio(x, y, sigmas, "code")[0].item()  # + 2·2/(m − 1), as their code
    assert code == pytest.approx(unbiased.item() + 4 / (m - 1), rel=1e-7)
    # the variance estimate matches the spread of the unbiased MMD² over many draws
    draws, estimates = [], []
    for _ in range(300):
        a, b = torch.randn(40, 4, generator=g), torch.randn(40, 4, generator=g) + 0.4
        mmd2, ratio = mix_rbf_mmd2_and_ratio(a, b, torch.tensor([1.5, 4.0]))
        draws.append(mmd2.item())
        estimates.append((mmd2 / ratio).item() ** 2)
    assert 0.7 < np.mean(estimates) / np.var(draws) < 1.4


def test_the_tuned_mmd_raises_the_t_statistic_and_orders_shifts():
    from gancli.metrics.sequences import median_pairwise_distance, mix_rbf_mmd2_and_ratio, mmd2_tuned, tune_sigmas

    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(100, 6, 1, generator=g), torch.randn(100, 6, 1, generator=g) * 1.3
    h = median_pairwise_distance(real)
    start = torch.tensor([h**-1.0, h**3.0], dtype=torch.float64)  # the code's start: h^−1 and h^3
    tuned, steps = tune_sigmas(real, fake, start, max_steps=300)
    before = mix_rbf_mmd2_and_ratio(real, fake, start, "biased")[1]
    after = mix_rbf_mmd2_and_ratio(real, fake, tuned, "biased")[1]
    assert 1 <= steps <= 300 and after > before
    more = 0.5 * torch.randn(500, 2, 1, generator=g)  # h ≈ 1: the start is [~1, ~1]
    same = mmd2_tuned(more[:250], more[250:], max_steps=200)
    shifted = mmd2_tuned(more[:250], more[250:] + 0.5, max_steps=200)
    assert same["mmd2"] == pytest.approx(4 / 199, abs=2e-3)  # the code's estimate: + 2·2/(m − 1)
    assert shifted["mmd2"] > same["mmd2"] + 2e-3
    # their objective favours a bandwidth near 0: a kernel ≈ identity gives a biased MMD² of 2/m with a
    # variance estimate of ~0, the largest t-statistic (recorded in the report; the value is what they measured)
    assert min(same["sigmas"]) < 0.01


class _ToyReal:
    """Three classes of 5-step, 2-channel sequences around the class's value: a training, a validation and a
    test part, as RealData serves them."""

    cfg = {"name": "toy"}

    def __init__(self):
        from gancli.metrics.reference import RealPart

        g = torch.Generator().manual_seed(0)

        def part(y):
            return RealPart("toy", y.view(-1, 1, 1).float() + 0.3 * torch.randn(len(y), 5, 2, generator=g), y)

        uneven = torch.tensor([0] * 34 + [1] * 28 + [2] * 28)[torch.randperm(90, generator=g)]
        self.train, self.vali, self.test = part(uneven), part(torch.arange(30) % 3), part(torch.arange(30) % 3)

    def key(self):
        return "toy"


def test_tstr_draws_as_many_sequences_as_the_training_part_with_its_classes_and_validation_picks_the_better_model():
    from types import SimpleNamespace

    from gancli.metrics import better, evaluate
    from gancli.metrics.suite import EvalContext, resolve

    real, asked = _ToyReal(), []

    def model(shift):  # draws sequences of class (c + shift) mod 3, labelled c
        def sampler(options, n):
            asked.append((options["class"], n))
            c = (options["class"] + shift) % 3
            return c + 0.3 * torch.randn(n, 5, 2)

        return sampler

    settings = OmegaConf.create({"metrics": ["tstr_vali", "tstr"], "n": 10, "batch_size": 10, "seed": 0})
    algo = SimpleNamespace(sample_options={"class": None}, num_classes=3)
    reports = {}
    for step, shift in ((100, 1), (200, 0), (300, 2)):  # three checkpoints: only the one at 200 is right
        ctx = EvalContext(
            resolve(settings.metrics),
            settings,
            Field("sequence", (5, 2)),
            real,
            torch.device("cpu"),
            3,
            algo,
            model(shift),
        )
        reports[step] = evaluate(ctx, with_floor=False).values
        assert sorted(asked) == [(0, 34), (1, 28), (2, 28)]  # the training part's count and classes, once
        asked.clear()
    best = None
    for step, values in reports.items():  # what eval.best=tstr_vali_f1 keeps
        if better("tstr_vali_f1", values["tstr_vali_f1"], None if best is None else reports[best]["tstr_vali_f1"]):
            best = step
    assert best == 200 and reports[200]["tstr"] == 1 and reports[100]["tstr"] == 0 and reports[200]["trtr"] == 1


def test_training_keeps_the_checkpoint_with_the_best_validation_tstr(tmp_path):
    """The authors' protocol during training: eval.best=tstr_vali_f1 keeps best.pt where the validation F1 peaked."""
    import json

    fake_mnist(tmp_path / "data" / "MNIST" / "raw", "train", 90, 0, True, True)  # digits 0-2: 27, 17 to train
    cfg = plain_config(
        compose_train(
            [
                *TINY,
                "model=rcgan",
                "dataset=mnist_seq",
                f"dataset.root={tmp_path / 'data'}",
                "dataset.download=false",
                "eval.every=1",
                "eval.metrics=[tstr_vali,tstr]",
                "eval.best=tstr_vali_f1",
                "eval.n=20",
                f"eval.cache_dir={tmp_path / 'cache'}",
            ]
        )
    )
    summary = build_trainer(cfg, tmp_path / "run").fit()
    lines = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    scores = [(ln["eval/tstr_vali_f1"], -ln["step"]) for ln in lines if "eval/tstr_vali_f1" in ln]
    assert len(scores) == 4 and summary["best"]["step"] == -max(scores)[1]
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()


def _sines(n: int, **params) -> torch.Tensor:
    return build_dataset(OmegaConf.create({"name": "sines", "n": n, **params})).reference(n)["x"]


def _sines_context(samples: torch.Tensor, metrics: list[str], n: int = 400, dataset: str = "sines"):
    """An evaluation context of fixed samples against a small draw of `dataset`."""
    from gancli.metrics.reference import RealData
    from gancli.metrics.suite import EvalContext, resolve

    real = RealData(compose_train([f"dataset={dataset}", f"dataset.n={n}"])["dataset"], n)
    settings = OmegaConf.create({"metrics": metrics, "n": len(samples), "batch_size": 100, "seed": 0})
    field_ = Field("sequence", tuple(samples.shape[1:]))
    return EvalContext(resolve(metrics), settings, field_, real, torch.device("cpu"), samples=samples)


def test_sine_fit_recovers_a_sines_parameters_and_its_ks_sees_a_missing_half_of_the_range():
    from gancli.metrics import evaluate
    from gancli.metrics.sines import fit_sines

    t = np.arange(30)
    f, a = fit_sines(0.6 * np.sin(2 * np.pi * 2.37 * t / 30 + 1.1)[None], np.arange(0.5, 5.5, 0.01))
    assert f[0] == pytest.approx(2.37) and a[0] == pytest.approx(0.6)
    whole = _sines(400, seed=7)
    slow = _sines(400, seed=7, freq=[1.0, 3.0])
    scores = {}
    for name, x in (("whole", whole), ("slow", slow)):
        report = evaluate(_sines_context(x, ["sine_fit"]))
        scores[name] = report.values
    assert scores["whole"]["ks_freq"] < 0.08 and scores["whole"]["ks_amp"] < 0.08
    assert 0.42 < scores["slow"]["ks_freq"] < 0.58 and scores["slow"]["ks_amp"] < 0.08  # half of U[1, 5] is missing
    assert report.floor["ks_freq"] < 0.08  # held-out real sines
    with pytest.raises(GanError, match="sine_fit measures models of the sines dataset"):
        evaluate(_sines_context(whole, ["sine_fit"], dataset="smooth"))


def test_mmd_vali_scores_against_a_third_draw_that_is_neither_the_training_nor_the_test_data():
    from gancli.metrics import evaluate

    x = _sines(200, seed=7) * 0.5
    ctx = _sines_context(x, ["mmd_vali", "mmd"], n=200)
    real = ctx.real
    values = evaluate(ctx, with_floor=False).values
    assert values["mmd_vali"] == pytest.approx(mmd2_unbiased(x, real.vali.samples)[0], rel=1e-9)
    assert values["mmd"] == pytest.approx(mmd2_unbiased(x, real.test.samples)[0], rel=1e-9)
    assert real.vali.samples.shape == real.test.samples.shape == (200, 30, 1)
    for other in (real.train.samples, real.test.samples):
        assert not torch.equal(real.vali.samples, other)
    ctx.real = type("NoVali", (), {"vali": None})()
    with pytest.raises(GanError, match="mmd_vali scores a validation part"):
        ctx.metrics[0][1].check(ctx)
