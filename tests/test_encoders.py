"""GANs with an encoder (AAE and its uses, ALI, BiGAN): who receives which gradients, the priors' moments,
the reparameterisation, the cluster-head cost and the latent metrics against their formulas, training with
exact resume on shapes at 16 and 28 px, `gan encode`, `reconstruct=`, and the bad-input messages."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import assert_same_state, compose_train, straight_and_resumed
from omegaconf import OmegaConf

from gancli.algorithms import build_algorithm
from gancli.algorithms.aae_categorical import head_distance_cost
from gancli.algorithms.priors import build_prior
from gancli.commands.encode import encode_from_config
from gancli.commands.sample import sample_from_config
from gancli.core.errors import GanError
from gancli.core.precision import Precision
from gancli.data.base import DataSpec, Field
from gancli.metrics.latent import cluster_error, majority_labels, nearest_neighbour_accuracy
from gancli.nets.encoder import Encoder
from gancli.nets.mlp import MLPDiscriminator
from gancli.training.run import build_trainer, plain_config

MLP = ["model.encoder.hidden=[16]", "model.decoder.hidden=[16]", "model.discriminator.hidden=[16]"]
TINY = [
    "dataset.n=64",
    "dataset.resolution=16",
    "trainer.batch_size=8",
    "trainer.steps=4",
    "trainer.log_every=1",
    "trainer.sample_every=2",
    "trainer.ckpt_every=100",
    "logger=none",
    "trainer.progress=false",
    "trainer.sample_n=8",
]
PRESETS = {
    "aae": MLP,
    "aae_supervised": MLP,
    "aae_semi": [*MLP, "model.clusters=5", "model.labelled=20"],
    "aae_cluster": [*MLP, "model.d_input_noise=0.3"],
    "aae_dimred": MLP,
    "bigan": [
        "model.encoder.hidden=[16]",
        "model.generator.hidden=[16]",
        "model.discriminator.hidden=[16]",
        "model.discriminator.joint_hidden=[16]",
    ],
    "bigan_conv": [
        "model.encoder.width=4",
        "model.generator.width=4",
        "model.discriminator.width=4",
        "model.discriminator.joint_hidden=[8]",
    ],
    "ali": [
        "model.encoder.width=4",
        "model.generator.width=4",
        "model.discriminator.width=4",
        "model.discriminator.z_hidden=[8]",
        "model.discriminator.joint_hidden=[8]",
    ],
}
OPTIONS = {
    "aae_prior_labels": (
        "aae",
        [*MLP, "model.z_dim=2", "model.prior=mixture", "model.prior_labels=true", "model.labelled=10"],
    ),
    "aae_swiss_roll": ("aae", [*MLP, "model.z_dim=2", "model.prior=swiss_roll", "model.prior_labels=true"]),
    "aae_gaussian_encoder": ("aae", [*MLP, "model.encoder.kind=gaussian", "model.prior=uniform"]),
}


def trainer_for(model, extra, tmp_path, *more):
    cfg = plain_config(compose_train([f"model={model}", *TINY, *extra, *more]))
    return build_trainer(cfg, tmp_path / "run")


class GradientRecorder:
    """Stands in for Precision.step: clears every network's gradients, backpropagates, and records which
    networks received any, per optimizer name, before stepping."""

    def __init__(self, algo):
        self.algo, self.seen = algo, {}

    def __call__(self, name, loss, optimizer):
        for m in self.algo.nets.values():
            m.zero_grad(set_to_none=True)
        loss.backward()
        self.seen[name] = {
            k
            for k, m in self.algo.nets.items()
            if any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
        }
        optimizer.step()


def record_step(trainer) -> dict[str, set[str]]:
    algo = trainer.algorithm
    recorder = GradientRecorder(algo)
    algo.precision.step = recorder
    algo.train_step(lambda: next(trainer.stream), 0)
    return recorder.seen


def test_in_aae_only_the_encoder_receives_the_generator_gradients(tmp_path):
    seen = record_step(trainer_for("aae", MLP, tmp_path))
    assert seen["autoencoder"] == {"encoder", "decoder"}  # reconstruction phase
    assert seen["D"] == {"D"}  # D on z: codes detached
    assert seen["encoder"] == {"encoder"}  # the encoder plays G; D and decoder untouched


def test_the_categorical_aae_runs_every_phase_with_the_right_networks(tmp_path):
    seen = record_step(trainer_for("aae_semi", PRESETS["aae_semi"], tmp_path))
    assert seen["autoencoder"] == {"encoder", "decoder"}
    assert seen["D"] == {"D_y", "D_z"}
    assert seen["encoder"] == {"encoder"}
    assert seen["classifier"] == {"encoder"}  # the semi-supervised phase


def test_in_bigan_d_sees_both_pairs_and_e_and_g_share_the_adversarial_update(tmp_path):
    trainer = trainer_for("bigan", PRESETS["bigan"], tmp_path)
    algo = trainer.algorithm
    g_params = {id(p) for group in algo.optimizers["G"].param_groups for p in group["params"]}
    assert g_params == {id(p) for k in ("encoder", "decoder") for p in algo.nets[k].parameters()}
    seen = record_step(trainer)
    assert seen == {"D": {"D"}, "G": {"encoder", "decoder"}}


def test_bigans_generator_step_minimises_the_pairs_loss_with_the_roles_swapped(tmp_path):
    trainer = trainer_for("bigan", PRESETS["bigan"], tmp_path)
    algo = trainer.algorithm
    x = next(trainer.stream)["x"]
    z = algo.prior.draw((len(x), algo.z_dim), algo.device)
    algo.prior.draw = lambda *a, **k: z  # the step's noise, known here
    losses = {}

    def record(name, loss, optimizer):
        if name == "G":  # D already stepped; E and G not yet
            n = algo.nets
            losses["expected"] = algo.loss.d_loss(n["D"](n["decoder"](z), z), n["D"](x, n["encoder"](x)))
            losses["got"] = loss.detach()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    algo.precision.step = record
    algo.train_step(lambda: {"x": x}, 0)
    assert torch.allclose(losses["got"], losses["expected"].detach(), atol=1e-6)
    flipped = algo.loss.d_loss(algo.nets["D"](x, algo.nets["encoder"](x)), algo.nets["D"](algo.nets["decoder"](z), z))
    assert not torch.allclose(losses["got"], flipped.detach())  # the roles matter


def test_encoder_families_refuse_penalties_and_tricks_they_would_not_apply(tmp_path):
    with pytest.raises(GanError, match=r"plain adversarial loss.*loss.gp_weight=10.0"):
        trainer_for("aae", MLP, tmp_path, "loss=wgan_gp")
    with pytest.raises(GanError, match=r"tricks.label_smoothing=0.1"):
        trainer_for("bigan", PRESETS["bigan"], tmp_path, "tricks.label_smoothing=0.1")
    trainer_for("aae", MLP, tmp_path, "loss=lsgan")  # a plain loss with its own keys is fine


def test_aae_semi_takes_one_value_of_y_per_class_of_the_dataset_and_clusters_stay_as_set(tmp_path):
    """model.clusters=null (aae_semi's default): the dataset's class count, 5 on shapes and the paper's 10 on MNIST;
    aae_cluster's 16 are clusters, not classes, and stay 16; null on data without labels is refused by name."""
    assert trainer_for("aae_semi", [*MLP, "model.labelled=20"], tmp_path / "a").algorithm.clusters == 5
    assert trainer_for("aae_cluster", MLP, tmp_path / "b").algorithm.clusters == 16
    assert (
        trainer_for("aae_semi", [*MLP, "model.labelled=0", "model.clusters=7"], tmp_path / "c").algorithm.clusters == 7
    )
    cfg = OmegaConf.create(plain_config(compose_train(["model=aae_semi", "dataset=mnist", *MLP])))
    assert cfg.model.clusters is None
    cpu = torch.device("cpu")
    mnist = DataSpec({"x": Field("image", (1, 28, 28)), "y": Field("label", (), 10)})  # its spec: no download
    assert build_algorithm(cfg, mnist, cpu, Precision(None, cpu)).clusters == 10
    cfg.model.labelled = 0
    with pytest.raises(GanError, match="model.clusters=null .* no class labels; set model.clusters"):
        build_algorithm(cfg, DataSpec({"x": Field("image", (1, 28, 28))}), cpu, Precision(None, cpu))
    from gancli.algorithms.aae_categorical import CategoricalAAE
    from gancli.core.rules import check, rules

    family_rules = rules(CategoricalAAE.all_config_rules())
    check({"model": {"clusters": None}}, family_rules)  # the rules accept null ...
    with pytest.raises(GanError, match="model.clusters=1 is not allowed"):
        check({"model": {"clusters": 1}}, family_rules)  # ... and still refuse 1


def test_labelled_counts_are_checked_where_they_apply(tmp_path):
    with pytest.raises(GanError, match="only model.prior_labels=true uses"):
        trainer_for("aae", MLP, tmp_path, "model.labelled=10")
    with pytest.raises(GanError, match="at least one label"):
        trainer_for(
            "aae", MLP, tmp_path, "model.z_dim=2", "model.prior=mixture", "model.prior_labels=true", "model.labelled=0"
        )


@pytest.mark.parametrize("name, mean, var", [("normal", 0.0, 1.0), ("uniform", 0.0, 1 / 3)])
def test_each_prior_has_its_moments(name, mean, var):
    z = build_prior(name).draw((200_000, 3), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(z.mean(0), torch.full((3,), mean), atol=0.01)
    assert torch.allclose(z.var(0), torch.full((3,), var), atol=0.01)


def test_the_mixture_prior_puts_label_k_on_its_own_gaussian():
    prior = build_prior("mixture")
    for k in (0, 3, 7):
        z = prior.draw((50_000, 2), generator=torch.Generator().manual_seed(k), labels=torch.full((50_000,), k))
        angle = 2 * math.pi * k / 10
        assert torch.allclose(z.mean(0), torch.tensor([1.4 * math.cos(angle), 1.4 * math.sin(angle)]), atol=0.01)
        along = torch.tensor([math.cos(angle), math.sin(angle)])
        across = torch.tensor([-math.sin(angle), math.cos(angle)])
        assert abs((z @ along).std().item() - 0.5) < 0.01 and abs((z @ across).std().item() - 0.05) < 0.002
    free = prior.draw((20_000, 2), generator=torch.Generator().manual_seed(1), labels=torch.full((20_000,), -1))
    assert free.norm(dim=1).mean() > 1.0 and free.mean(0).norm() < 0.05  # −1: any part, spread round the circle


def test_the_swiss_roll_prior_gives_label_k_its_segment_of_the_roll():
    prior = build_prior("swiss_roll")
    for k in (0, 4, 9):
        z = prior.draw((10_000, 2), generator=torch.Generator().manual_seed(k), labels=torch.full((10_000,), k))
        r = z.norm(dim=1)
        assert r.min() >= 3 * math.sqrt(k / 10) - 1e-5 and r.max() <= 3 * math.sqrt((k + 1) / 10) + 1e-5
        assert torch.allclose(
            torch.atan2(z[:, 1], z[:, 0]) % (2 * math.pi), (4 * math.pi * r / 3) % (2 * math.pi), atol=1e-3
        )


def test_two_d_priors_refuse_a_latent_of_another_size(tmp_path):
    with pytest.raises(GanError, match=r"model.prior=mixture.*2-D.*8 dimensions.*model.z_dim=2"):
        trainer_for("aae", MLP, tmp_path, "model.prior=mixture")
    with pytest.raises(GanError, match="prior_labels=true.*has no parts"):
        trainer_for("aae", MLP, tmp_path, "model.prior_labels=true")


def test_the_gaussian_encoder_reparameterises_so_gradients_reach_its_mean_and_variance():
    torch.manual_seed(0)
    E = Encoder(MLPDiscriminator(Field("points", (4,)), hidden=[8]), 3, "gaussian")
    x = torch.randn(16, 4)
    out = E.encode(x)
    assert set(out) == {"z", "mean", "logvar"}
    assert not torch.equal(E(x), E(x)) and torch.equal(E(x, sample=False), out["mean"])
    eps = (out["z"] - out["mean"]) / torch.exp(0.5 * out["logvar"])
    assert abs(eps.std().item() - 1) < 0.3  # z = μ + σ·ε
    out["z"].pow(2).sum().backward()
    grad = E.out.weight.grad
    assert grad[:3].abs().sum() > 0 and grad[3:].abs().sum() > 0  # μ rows and log σ² rows


def test_the_bounded_encoder_stays_in_the_uniform_priors_cube():
    E = Encoder(MLPDiscriminator(Field("points", (4,)), hidden=[8]), 3, bounded=True)
    x = 100 * torch.randn(64, 4)
    z = E(x)
    assert z.abs().max() <= 1 and torch.allclose(z, 2 * torch.sigmoid(E.out(E.body(x))) - 1)
    with pytest.raises(GanError, match="bounded"):
        Encoder(MLPDiscriminator(Field("points", (4,)), hidden=[8]), 3, "gaussian", bounded=True)


def test_the_head_distance_cost_is_the_sum_of_shortfalls_below_eta():
    heads = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]], requires_grad=True)
    # pairs: d = 1, 3, √10; with η = 2 only the first falls short, by 1
    assert head_distance_cost(heads, 2.0).item() == pytest.approx(1.0)
    assert head_distance_cost(heads, 0.5).item() == 0.0
    head_distance_cost(heads, 2.0).backward()
    assert torch.allclose(heads.grad[:2], torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))  # pushes the close pair apart


def test_latent_metrics_follow_their_definitions():
    train_z, train_y = torch.tensor([[0.0], [1.0], [10.0]]), torch.tensor([0, 0, 1])
    test_z, test_y = torch.tensor([[0.4], [9.0], [6.0], [4.0]]), torch.tensor([0, 1, 0, 1])
    assert nearest_neighbour_accuracy(train_z, train_y, test_z, test_y, chunk=1) == 0.5  # 6 → 10 (1), 4 → 1 (0)
    clusters, labels = torch.tensor([0, 0, 0, 1, 1, 2]), torch.tensor([4, 4, 2, 2, 2, 1])
    assert majority_labels(clusters, labels, 4).tolist() == [4, 2, 1, -1]
    assert cluster_error(clusters, labels, torch.tensor([0, 1, 3]), torch.tensor([4, 1, 0]), 4) == pytest.approx(2 / 3)


@pytest.mark.slow
@pytest.mark.parametrize("name", [*PRESETS, *OPTIONS])
@pytest.mark.parametrize("resolution", [16, 28])
def test_each_preset_and_option_trains_resumes_exactly_and_samples(name, resolution, tmp_path):
    model, extra = OPTIONS.get(name, (name, PRESETS.get(name)))
    cfg = plain_config(
        compose_train([f"model={model}", *TINY, *extra, f"dataset.resolution={resolution}", "trainer.steps=5"])
    )
    straight, resumed = straight_and_resumed(cfg, tmp_path, stop=2)
    for key in ("nets", "optimizers", "algorithm"):
        assert_same_state(straight.state_dict()[key], resumed.state_dict()[key], key)
    run = tmp_path / "straight"
    assert (run / "final.png").exists()
    if "model.z_dim=2" in extra:  # a 2-D code: the scatter and the decoded manifold join the grid
        assert {"latent"} <= set(
            straight.algorithm.panels(straight.reference, straight.algorithm.nets, torch.Generator().manual_seed(0), 4)
        )
    sample = {"ckpt": str(run), "n": 8, "seed": 0, "nrow": 4, "batch_size": 4, "device": "cpu", "ema": True}
    for extra_opts, out in (({}, "plain.png"), ({"reconstruct": "test"}, "rec.png"), ({}, "bulk.npz")):
        fmt = "npz" if out.endswith("npz") else "png"
        sample_from_config(OmegaConf.create({**sample, **extra_opts, "format": fmt, "out": str(tmp_path / out)}))
        assert (tmp_path / out).exists()
    encoded = encode(run, tmp_path / "z.npz", split="test", n=12)
    assert encoded["z"].shape[0] == 12 and encoded["labels"].shape == (12,)
    from gancli.data.base import split_reference

    test = split_reference(straight.algorithm.cfg.dataset, 12, "test")["x"]
    straight.algorithm.train_mode(False)
    live = straight.algorithm.encode(test)["z"]  # what training ended with, every network loaded
    np.testing.assert_allclose(encoded["z"], live.numpy(), rtol=1e-4, atol=1e-5)


def encode(run, out, **keys):
    cmd = {
        "ckpt": str(run),
        "input": None,
        "split": None,
        "n": None,
        "out": str(out),
        "plot": False,
        "batch_size": 5,
        "device": "cpu",
        **keys,
    }
    encode_from_config(OmegaConf.create(cmd))
    return dict(np.load(out))


@pytest.fixture(scope="module")
def aae_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("aae")
    cfg = plain_config(compose_train(["model=aae_supervised", *TINY, *MLP, "model.z_dim=2"]))
    build_trainer(cfg, tmp / "run").fit()
    return tmp / "run"


def test_gan_encode_writes_codes_in_input_order_with_labels_and_a_scatter(aae_run, tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 16, 16, 3), dtype=np.uint8)
    np.savez(tmp_path / "in.npz", images=images, labels=np.arange(7) % 5)
    out = encode(aae_run, tmp_path / "z.npz", input=str(tmp_path / "in.npz"), plot=True)
    assert out["z"].shape == (7, 2) and out["labels"].tolist() == [0, 1, 2, 3, 4, 0, 1]
    one = encode(aae_run, tmp_path / "one.npz", input=str(tmp_path / "in.npz"), batch_size=1)
    np.testing.assert_allclose(out["z"], one["z"], rtol=1e-5, atol=1e-6)  # order and values do not depend on batching
    assert (tmp_path / "z.png").exists()


def test_reconstruct_on_the_supervised_aae_needs_labels_and_class_all_draws_a_row_per_class(aae_run, tmp_path):
    from PIL import Image

    (tmp_path / "folder").mkdir()
    Image.new("RGB", (16, 16), (200, 0, 0)).save(tmp_path / "folder" / "a.png")
    base = {
        "ckpt": str(aae_run),
        "n": 8,
        "seed": 0,
        "nrow": 4,
        "batch_size": 4,
        "device": "cpu",
        "ema": True,
        "format": "png",
    }
    with pytest.raises(GanError, match="needs labelled inputs"):
        sample_from_config(
            OmegaConf.create({**base, "reconstruct": str(tmp_path / "folder"), "out": str(tmp_path / "r.png")})
        )
    sample_from_config(OmegaConf.create({**base, "class": "all", "format": "npz", "out": str(tmp_path / "c.npz")}))
    labels = np.load(tmp_path / "c.npz")["labels"]
    assert sorted(set(labels.tolist())) == [0, 1, 2, 3, 4]


def test_encoding_bad_inputs_get_one_paragraph_messages(aae_run, tmp_path):
    np.savez(tmp_path / "grey.npz", images=np.zeros((2, 16, 16, 1), np.uint8))
    with pytest.raises(GanError, match=r"\(N, H, W, 3\) uint8"):
        encode(aae_run, tmp_path / "z.npz", input=str(tmp_path / "grey.npz"))
    with pytest.raises(GanError, match="give one of the two"):
        encode(aae_run, tmp_path / "z.npz", input=str(tmp_path / "grey.npz"), split="test")
    with pytest.raises(GanError, match="does not exist"):
        encode(aae_run, tmp_path / "z.npz", input=str(tmp_path / "missing"))


def test_encoding_with_a_model_without_an_encoder_names_the_families_that_have_one(tmp_path):
    cfg = plain_config(
        compose_train(
            ["model=dcgan", *TINY, "model.generator.width=4", "model.discriminator.width=4", "trainer.steps=1"]
        )
    )
    build_trainer(cfg, tmp_path / "gan").fit()
    with pytest.raises(GanError, match=r"needs a model with an encoder \(aae.*bigan\).*dcgan"):
        encode(tmp_path / "gan", tmp_path / "z.npz", split="test")
