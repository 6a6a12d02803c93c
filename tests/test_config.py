"""Config composition: defaults, model presets, command-line precedence, and override validation."""

from __future__ import annotations

import pytest
import torch
from conftest import image_presets

import gancli.cli.app
from gancli.cli.app import validate_overrides
from gancli.core.errors import GanError
from gancli.nets.conditional import ConditionalGenerator
from gancli.nets.mlp import MLPDiscriminator, MLPGenerator
from gancli.training.run import build_trainer, plain_config

MODELS = image_presets()


def test_models_found():
    assert {"dcgan", "gan", "lsgan", "wgan", "wgan_gp", "hinge", "cgan", "cdcgan", "acgan", "sngan", "infogan"} <= set(
        MODELS
    )


def test_defaults(compose_cfg):
    cfg = compose_cfg([])
    assert cfg.model.name == "dcgan"
    assert cfg.model.generator.arch == "dcgan" and cfg.model.discriminator.norm == "batch"
    assert cfg.dataset.name == "shapes"
    assert cfg.loss.name == "nonsat" and cfg.loss.gp_weight == 0 and cfg.loss.clip is None
    assert cfg.optimizer.name == "adam" and cfg.optimizer.lr == pytest.approx(2e-4)
    assert list(cfg.optimizer.betas) == [0.5, 0.999]
    assert cfg.model.n_critic == 1
    # trainer suggestions come from the dataset
    assert cfg.trainer.steps == cfg.dataset.steps and cfg.trainer.batch_size == cfg.dataset.batch_size


def test_the_trainer_defaults_live_in_its_yaml_alone(conf_dir):
    """conf/trainer/default.yaml holds every value (with the comments the docs show); the schema types the same
    keys and sets none, so the two cannot disagree."""
    import dataclasses

    import yaml
    from omegaconf import MISSING

    from gancli.cli.schema import TrainerConfig

    fields = dataclasses.fields(TrainerConfig)
    assert all(f.default is MISSING for f in fields)
    keys = set(yaml.safe_load((conf_dir / "trainer" / "default.yaml").read_text())) - {"defaults"}
    assert keys == {f.name for f in fields}


def test_tiny_overrides_apply(compose_cfg, tiny_overrides):
    cfg = compose_cfg(tiny_overrides)
    for o in tiny_overrides:
        key, value = o.split("=", 1)
        if key == "logger":  # a group choice: logger=none leaves no logger beside metrics.jsonl
            assert value == "none" and not cfg.logger
            continue
        node = cfg
        for part in key.split("."):
            node = node[part]
        assert str(node).lower() == value.lower(), key


def test_wgan_gp_preset(compose_cfg):
    cfg = compose_cfg(["model=wgan_gp"])
    assert cfg.model.name == "wgan_gp"
    assert cfg.loss.name == "wgan" and cfg.loss.gp_weight == 10.0 and cfg.loss.clip is None
    assert cfg.optimizer.name == "adam"
    assert cfg.optimizer.lr == pytest.approx(1e-4) and cfg.optimizer.lr_d == pytest.approx(1e-4)
    assert list(cfg.optimizer.betas) == [0.0, 0.9]
    assert cfg.model.n_critic == 5
    assert cfg.model.discriminator.norm == "none"


@pytest.mark.parametrize("order", [["model=wgan_gp", "loss=hinge"], ["loss=hinge", "model=wgan_gp"]])
def test_command_line_loss_beats_preset(compose_cfg, order):
    cfg = compose_cfg(order)
    assert cfg.model.name == "wgan_gp"
    assert cfg.loss.name == "hinge" and cfg.loss.gp_weight == 0.0
    assert cfg.optimizer.lr == pytest.approx(1e-4)  # the rest of the preset still applies


def test_dataset_suggests_the_conv_width_and_the_command_line_wins(compose_cfg):
    shapes = compose_cfg([])
    assert shapes.model.generator.width == shapes.model.discriminator.width == shapes.dataset.net_width == 32
    assert compose_cfg(["dataset=cifar10"]).model.generator.width == 64
    assert compose_cfg(["dataset=ring8"]).model.generator.width == 64  # no suggestion: the preset's 64
    assert compose_cfg(["model=wgan_gp", "dataset.net_width=48"]).model.discriminator.width == 48
    assert compose_cfg(["model.generator.width=128"]).model.generator.width == 128


def test_command_line_optimizer_beats_preset(compose_cfg):
    cfg = compose_cfg(["model=wgan", "optimizer=adam"])
    assert cfg.optimizer.name == "adam" and cfg.loss.name == "wgan" and cfg.loss.clip == 0.01


PRESET_DATASETS = {  # presets that cannot train on shapes: the dataset each names in its defaults list
    "pix2pix": {"name": "shapes_paired", "resolution": 32},
    "pix2pixhd": {"name": "shapes_paired", "resolution": 128},  # shapes_paired_128: its three D scales
    "cyclegan": {"name": "shapes_unpaired"},
    "rgan": {"name": "sines", "bands": 0},
    "rcgan": {"name": "sines", "bands": 3},  # sines_labelled: classes to condition on
}


def test_presets_train_on_shapes_unless_they_name_their_own_dataset(compose_cfg):
    for preset in (p.stem for p in sorted((gancli.cli.app.conf_dir() / "model").glob("*.yaml"))):
        dataset = compose_cfg([f"model={preset}"]).dataset
        expected = PRESET_DATASETS.get(preset, {"name": "shapes"})
        assert {k: dataset[k] for k in expected} == expected, preset


@pytest.mark.parametrize(
    "order", [["model=pix2pixhd", "dataset=shapes_paired"], ["dataset=shapes_paired", "model=pix2pixhd"]]
)
def test_command_line_dataset_beats_the_presets(compose_cfg, order):
    cfg = compose_cfg(order)
    assert cfg.model.name == "pix2pixhd" and cfg.dataset.resolution == 32  # shapes_paired as it is
    assert compose_cfg(["model=rcgan", "dataset=sines"]).dataset.bands == 0
    assert compose_cfg(["model=rgan", "dataset=smooth"]).dataset.name == "smooth"
    assert compose_cfg(["model=cyclegan", "dataset.n=8"]).dataset.n == 8  # keys of the preset's dataset


def test_a_preset_extending_another_can_name_another_dataset(compose_cfg, tmp_path):
    """A preset that extends one with a dataset of its own (as dataset-specific presets would) replaces it, and the
    command line still wins over both."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "rcgan_smooth.yaml").write_text(
        "defaults:\n  - rcgan\n  - override /dataset@_global_.dataset: smooth\n  - _self_\nname: rcgan_smooth\n"
    )
    searchpath = f"hydra.searchpath=[file://{tmp_path}]"
    assert compose_cfg(["model=rcgan_smooth", searchpath]).dataset.name == "smooth"
    assert compose_cfg(["model=rcgan_smooth", searchpath, "dataset=sines_labelled"]).dataset.bands == 3


def test_wgan_preset(compose_cfg):
    cfg = compose_cfg(["model=wgan"])
    assert cfg.optimizer.name == "rmsprop" and cfg.optimizer.lr == pytest.approx(5e-5)
    assert cfg.loss.name == "wgan" and cfg.loss.clip == 0.01 and cfg.loss.gp_weight == 0.0
    assert cfg.model.n_critic == 5


@pytest.mark.parametrize(
    "model,loss,optimizer",
    [
        ("dcgan", "nonsat", "adam"),
        ("gan", "nonsat", "adam"),
        ("lsgan", "lsgan", "adam"),
        ("hinge", "hinge", "adam"),
        ("wgan", "wgan", "rmsprop"),
        ("wgan_gp", "wgan", "adam"),
    ],
)
def test_preset_loss_and_optimizer(compose_cfg, model, loss, optimizer):
    cfg = compose_cfg([f"model={model}"])
    assert (cfg.loss.name, cfg.optimizer.name) == (loss, optimizer)


def test_hinge_preset_spectral(compose_cfg):
    assert compose_cfg(["model=hinge"]).model.discriminator.norm == "spectral"


def _tiny_model_overrides(compose_cfg, model: str) -> list[str]:
    """Shrink whatever networks the preset uses."""
    m = compose_cfg([f"model={model}"]).model
    out = []
    for role in ("generator", "discriminator"):
        if m[role].arch == "dcgan":
            out += [f"model.{role}.width=8"]
        elif m[role].arch == "mlp":
            out += [f"model.{role}.hidden=[16,32]"]
    return out


COMMON = [
    "trainer.batch_size=16",
    "trainer.steps=2",
    "logger=none",
    "trainer.progress=false",
    "trainer.sample_n=16",
]


def _check_one_step(trainer, spec_shape):
    logs = trainer.algorithm.train_step(trainer._next_batch, 0)
    assert {"loss/D", "loss/G"} <= set(logs)
    assert all(torch.isfinite(v).all() for v in logs.values())
    trainer.algorithm.train_mode(False)
    x = trainer.algorithm.generate(trainer.algorithm.sample_inputs(4, torch.Generator().manual_seed(0)))
    assert x.shape == (4, *spec_shape)


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_every_model_builds_on_shapes(compose_cfg, tmp_path, model):
    cfg = compose_cfg(
        [f"model={model}", "dataset.n=64", "dataset.resolution=16", *COMMON, *_tiny_model_overrides(compose_cfg, model)]
    )
    trainer = build_trainer(plain_config(cfg), tmp_path)
    assert trainer.spec["x"].shape == (3, 16, 16)
    assert trainer.algorithm.n_critic == cfg.model.n_critic
    _check_one_step(trainer, (3, 16, 16))


@pytest.mark.parametrize("model", MODELS)
def test_every_model_builds_on_ring8(compose_cfg, tmp_path, model):
    cfg = compose_cfg(
        [
            f"model={model}",
            "dataset=ring8",
            "dataset.n=512",
            *COMMON,
            "dataset.networks.generator.hidden=[16,16]",
            "dataset.networks.discriminator.hidden=[16,16]",
        ]
    )
    trainer = build_trainer(plain_config(cfg), tmp_path)
    G, D = trainer.algorithm.nets["G"], trainer.algorithm.nets["D"].body
    G = G.net if isinstance(G, ConditionalGenerator) else G  # conditional: the wrapped G
    assert isinstance(G, MLPGenerator) and isinstance(D, MLPDiscriminator)  # pinned, whatever the preset
    assert [m.out_features for m in G.modules() if isinstance(m, torch.nn.Linear)] == [16, 16, 2]
    _check_one_step(trainer, (2,))


# ------------------------------------------------------------------------------------------ validation


@pytest.mark.slow
def test_valid_overrides_pass():
    validate_overrides("train", ["model=wgan_gp", "trainer.steps=10", "dataset=ring8"])
    validate_overrides("train", ["model=dcgan,wgan_gp", "loss=hinge"])


def test_unknown_key_names_key_and_valid_keys():
    with pytest.raises(GanError) as info:
        validate_overrides("train", ["trainer.stpes=10"])
    msg = str(info.value)
    assert "trainer.stpes" in msg
    assert "steps" in msg and "batch_size" in msg  # the valid keys under trainer
    assert "Did you mean 'trainer.steps'" in msg


def test_unknown_choice_names_choices():
    with pytest.raises(GanError) as info:
        validate_overrides("train", ["model=wgangp"])
    msg = str(info.value)
    assert "wgangp" in msg
    for m in MODELS:
        assert m in msg
    assert "Did you mean 'wgan_gp'" in msg


def test_bad_type_names_key():
    with pytest.raises(GanError, match="trainer.steps") as info:
        validate_overrides("train", ["trainer.steps=abc"])
    assert "abc" in str(info.value)


@pytest.mark.parametrize(
    "overrides,needle",
    [
        (["model=dcgan,wgangp"], "wgangp"),
        (["model=wgangp,dcgan"], "wgangp"),
        (["trainer.steps=10,abc"], "trainer.steps"),
        (["model=dcgan,wgan", "trainer.stpes=3"], "trainer.stpes"),
    ],
)
def test_sweep_values_are_validated(overrides, needle):
    with pytest.raises(GanError, match=needle):
        validate_overrides("train", overrides)


def test_missing_required_value():
    with pytest.raises(GanError, match="dataset.root"):
        validate_overrides("train", ["dataset=image_folder"])
    validate_overrides("train", ["dataset=image_folder"], require_values=False)


def test_validation_leaves_hydra_clear(compose_cfg):
    from hydra.core.global_hydra import GlobalHydra

    with pytest.raises(GanError):
        validate_overrides("train", ["model=wgangp"])
    assert not GlobalHydra.instance().is_initialized()
    assert compose_cfg(["model=wgan"]).model.name == "wgan"  # composing still works afterwards


@pytest.mark.parametrize(
    "model, d_has",
    [("sngan", "spectral"), ("hinge", "spectral"), ("wgan", "batch"), ("dcgan", "batch"), ("gan", "none")],
)
def test_2d_networks_keep_what_the_preset_says_about_normalisation(compose_cfg, tmp_path, model, d_has):
    """The 2-D datasets pin the MLP pair's shape; the preset's norms still apply (sngan's D is spectrally
    normalised on ring8 too, a WGAN-GP critic has no BatchNorm)."""
    from torch.nn.utils import parametrize

    cfg = compose_cfg([f"model={model}", "dataset=ring8", "dataset.n=512", *COMMON])
    algo = build_trainer(plain_config(cfg), tmp_path).algorithm
    layers = [m for m in algo.D.modules() if isinstance(m, torch.nn.Linear)]
    spectral = [parametrize.is_parametrized(m, "weight") for m in layers]
    batch_norm = any(isinstance(m, torch.nn.BatchNorm1d) for m in algo.D.modules())
    assert all(spectral) == (d_has == "spectral") and any(spectral) == (d_has == "spectral")
    assert batch_norm == (d_has == "batch")
    assert [m.out_features for m in layers][:3] == [128, 128, 128]  # still the dataset's pinned shape
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in algo.G.modules())


# ------------------------------------------------------------------------------ per-(model, dataset) settings


@pytest.mark.parametrize("dataset", ["ring8", "grid25"])
def test_wgan_gp_on_points_takes_the_authors_toy_settings(compose_cfg, tmp_path, dataset):
    """model=wgan_gp on a 2-D mixture composes conf/model_dataset/wgan_gp_<dataset>.yaml: gan_toy.py's nets
    (3 × 512 ReLU each, 2-d noise, no norm, tflib's init), λ = 0.1, Adam β = (0.5, 0.9), G on fresh noise."""
    cfg = compose_cfg(["model=wgan_gp", f"dataset={dataset}", "dataset.n=512", *COMMON])
    assert cfg.loss.gp_weight == pytest.approx(0.1) and list(cfg.optimizer.betas) == [0.5, 0.9]
    assert cfg.optimizer.lr == pytest.approx(1e-4) and cfg.model.n_critic == 5 and cfg.dataset.batch_size == 256
    assert cfg.model.g_fakes == "fresh"
    algo = build_trainer(plain_config(cfg), tmp_path).algorithm
    G, D = algo.G, algo.D
    assert algo.z_dim == 2
    for net, widths in ((G, [512, 512, 512, 2]), (D, [512, 512, 512, 1])):
        linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
        assert [m.out_features for m in linears] == widths
        assert not any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.LayerNorm)) for m in net.modules())
        assert sum(isinstance(m, torch.nn.ReLU) for m in net.modules()) == 3
        assert not any(isinstance(m, torch.nn.LeakyReLU) for m in net.modules())
        for m in linears[:-1]:  # He-uniform: U(±√(6 / fan_in)); biases 0
            assert (
                m.weight.abs().max() <= (6 / m.in_features) ** 0.5
                and m.weight.abs().max() > 0.9 * (6 / m.in_features) ** 0.5
            )
            assert not m.bias.any()
        out = linears[-1]  # Glorot-uniform
        bound = (6 / (out.in_features + out.out_features)) ** 0.5
        assert bound * 0.9 < out.weight.abs().max() <= bound and not out.bias.any()


def test_pair_settings_yield_to_the_command_line_and_other_choices(compose_cfg):
    cfg = compose_cfg(
        ["model=wgan_gp", "dataset=ring8", "loss.gp_weight=3", "dataset.networks.z_dim=8", "optimizer.betas=[0.0,0.9]"]
    )
    assert cfg.loss.gp_weight == 3 and cfg.dataset.networks.z_dim == 8 and list(cfg.optimizer.betas) == [0.0, 0.9]
    assert cfg.dataset.networks.generator.hidden == [512, 512, 512]  # the rest of the pair's settings stay
    dropped = compose_cfg(["model=wgan_gp", "dataset=ring8", "~model_dataset"])
    assert dropped.loss.gp_weight == 10 and dropped.dataset.networks.z_dim == 8  # the preset and dataset alone
    images = compose_cfg(["model=wgan_gp", "dataset=cifar10"])  # no such pair: the image preset
    assert images.loss.gp_weight == 10 and list(images.optimizer.betas) == [0.0, 0.9]
    other = compose_cfg(["model=wgan", "dataset=ring8"])  # another model on the ring
    assert other.dataset.networks.z_dim == 8 and other.dataset.networks.generator.hidden == [128, 128, 128]


def test_shared_pair_parts_are_not_listed_as_options():
    text = gancli.cli.app.config_groups_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("model_dataset:"))
    assert (
        line == "model_dataset: bigan_mnist, infogan_mnist, rcgan_mnist_seq, rgan_sines, wgan_gp_grid25, wgan_gp_ring8"
    )


def test_mlp_init_is_checked():
    from gancli.data.base import Field

    with pytest.raises(GanError, match="he_uniform"):
        MLPGenerator(Field("points", (2,)), 2, [8], init="he")
