"""Every preset `gan train --help` lists trains with nothing but `model=<name>`: on the default dataset, or on the
one the preset names itself when it cannot train there. Each is trained a few steps with overrides that only
shrink it (never the dataset) and then sampled through `gan sample`'s code path."""

from __future__ import annotations

import pytest
from conftest import compose_train
from omegaconf import OmegaConf
from PIL import Image

from gancli.cli import schema
from gancli.cli.app import config_groups_text
from gancli.commands.sample import sample_from_config
from gancli.training.run import build_trainer, plain_config


def listed_presets() -> list[str]:
    """The model presets as `gan train --help` lists them (its "model: ..." line)."""
    line = next(row for row in config_groups_text().splitlines() if row.startswith("model: "))
    return line.removeprefix("model: ").split(", ")


RUN = [
    "trainer.steps=2",
    "trainer.batch_size=8",
    "trainer.log_every=1",
    "trainer.sample_every=2",
    "trainer.ckpt_every=2",
    "logger=none",
    "trainer.progress=false",
    "trainer.sample_n=8",
]
KEEP_RESOLUTION = {"pix2pix", "cyclegan"}  # their dataset's own (the U-Net needs ≥ 32 px; pix2pixhd's 3 Ds 128)


def net_sizes(prefix: str, net) -> list[str]:
    """Narrow, shallow versions of one network's own keys (whichever its arch has)."""
    out = []
    for key, value in net.items():
        if key in ("width", "max_width"):
            out.append(f"{prefix}.{key}={4 if key == 'width' else 8}")
        elif key == "hidden":
            out.append(f"{prefix}.hidden={8 if isinstance(value, int) else [16]}")
        elif key in ("joint_hidden", "z_hidden") and value:
            out.append(f"{prefix}.{key}=[16]")
        elif key == "fc" and value:
            out.append(f"{prefix}.fc=16")
        elif key == "blocks":
            out.append(f"{prefix}.blocks=1")
    return out


def sizes(cfg) -> list[str]:
    """Overrides that make the preset's composed run tiny: fewer samples and steps, smaller images and networks,
    where the config has the key. Sizes only: no dataset choice, no change of method."""
    m, d = cfg.model, cfg.dataset
    out = list(RUN)
    if "n" in d:
        out.append("dataset.n=32")
    if d.get("resolution") is not None and m.algorithm not in KEEP_RESOLUTION:
        out.append("dataset.resolution=16")
    for role in ("generator", "discriminator", "encoder", "decoder"):
        if OmegaConf.is_dict(m.get(role)):
            out += net_sizes(f"model.{role}", m[role])
    model_keys = {"width": 4, "max_width": 8, "w_dim": 8, "mapping_layers": 2, "fade_images": 8, "stable_images": 8}
    out += [f"model.{k}={v}" for k, v in model_keys.items() if k in m]
    if m.get("z_dim", 0) > 8:
        out.append("model.z_dim=8")
    if m.get("head_hidden"):
        out.append("model.head_hidden=8")
    if m.get("labelled"):  # labels kept for the semi-supervised phase: a few per class of 32 samples
        out.append("model.labelled=10")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("preset", listed_presets())
def test_every_preset_trains_on_its_default_dataset_and_samples(preset, tmp_path):
    cfg = compose_train([f"model={preset}"])
    overrides = [f"model={preset}", *sizes(cfg)]
    assert not any(o.startswith("dataset=") for o in overrides)
    config = plain_config(compose_train(overrides))
    assert config["dataset"]["name"] == cfg.dataset.name
    build_trainer(config, tmp_path / "run").fit()
    ckpt = tmp_path / "run" / "checkpoints" / "last.pt"
    assert ckpt.is_file()

    schema.register_sample()  # as `gan sample` does before composing its config
    out = tmp_path / "samples.png"
    sample_from_config(compose_train([f"ckpt={ckpt}", f"out={out}", "n=4", "nrow=2", "device=cpu"], "sample"))
    assert Image.open(out).size[0] > 0
