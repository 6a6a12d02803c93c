"""Shared fixtures: in-process config composition and a tiny, fast training setup."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

import gancli.cli.app
from gancli.core.checkpoint import load_checkpoint
from gancli.training.run import build_trainer

# Tiny networks on a small shared CPU: torch's intra-op thread pool only costs time here (on an
# oversubscribed 2-core box a 16×16 conv step is ~20× slower with 2 threads than with 1).
torch.set_num_threads(1)

TINY_OVERRIDES = [
    "dataset.n=256",
    "dataset.resolution=16",  # DCGAN pyramid: 4 → 8 → 16
    "model.generator.width=8",
    "model.discriminator.width=8",
    "trainer.batch_size=16",
    "trainer.steps=6",
    "trainer.log_every=2",
    "trainer.sample_every=3",
    "trainer.ckpt_every=3",
    "logger=none",
    "trainer.progress=false",
    "trainer.sample_n=16",
]


OWN_TESTS = {
    "aae",
    "aae_categorical",
    "aae_dimred",
    "bigan",
    "progan",
    "stylegan",
    "stylegan2",
}  # test_encoders / progressive / stylegan


def image_presets() -> list[str]:
    """The presets that map noise (and a label) to images and points with the GAN family's networks: the
    sequence, translation, encoder and progressive families read other fields or build other networks and
    have their own tests (test_sequences.py, test_translation.py, test_encoders.py, test_progressive.py)."""
    import yaml

    model_dir = gancli.cli.app.conf_dir() / "model"

    def algorithm(name: str) -> str:  # follows `defaults:` to the preset that names it
        node = yaml.safe_load((model_dir / f"{name}.yaml").read_text())
        parents = [d for d in node.get("defaults", []) if isinstance(d, str) and d != "_self_"]
        return node.get("algorithm") or algorithm(parents[0])

    return [
        p.stem
        for p in sorted(model_dir.glob("*.yaml"))
        if algorithm(p.stem) not in {"rgan", "pix2pix", "cyclegan", *OWN_TESTS}
    ]


def compose_train(overrides: list[str] | None = None, config_name: str = "train"):
    """Compose a config in-process exactly as `gan train` would (resolvers and schemas registered)."""
    gancli.cli.app.register_resolvers()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(gancli.cli.app.conf_dir()), version_base="1.3"):
            return compose(config_name=config_name, overrides=list(overrides or []))
    finally:
        GlobalHydra.instance().clear()


def assert_same_state(a, b, path: str = "") -> None:
    """Two (nested) states hold equal tensors and values, bit for bit."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"differs at {path}"
    elif isinstance(a, dict):
        assert set(a) == set(b), f"keys differ at {path}"
        for k in a:
            assert_same_state(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"lengths differ at {path}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"differs at {path}: {a!r} != {b!r}"


PLUGINS = Path(__file__).parent / "plugins"


@pytest.fixture
def toy_plugin(monkeypatch):
    """The test-only plugin package (tests/plugins) installed, as far as Python can tell: on sys.path with
    its entry-point metadata."""
    import gancli.core.plugins

    monkeypatch.syspath_prepend(str(PLUGINS))
    gancli.core.plugins.reset()
    yield PLUGINS
    gancli.core.plugins.reset()


@pytest.fixture
def compose_cfg():
    """compose_cfg(overrides) → the composed `train` config (a DictConfig)."""
    return compose_train


@pytest.fixture
def tiny_overrides() -> list[str]:
    """Overrides for a few-second run: 16 px shapes, 8-channel DCGAN nets, 6 steps, no TensorBoard/bar."""
    return list(TINY_OVERRIDES)


@pytest.fixture
def conf_dir() -> Path:
    return gancli.cli.app.conf_dir()


def straight_and_resumed(cfg: dict, tmp_path: Path, stop: int):
    """The same run trained straight through and stopped at `stop`, then resumed from its checkpoint."""
    straight = build_trainer(copy.deepcopy(cfg), tmp_path / "straight")
    straight.fit()
    first = build_trainer(copy.deepcopy(cfg), tmp_path / f"resumed{stop}")
    first.fit(stop_after=stop)
    state = load_checkpoint(tmp_path / f"resumed{stop}" / "checkpoints" / "last.pt")
    assert state["step"] == stop
    torch.manual_seed(12345)  # whatever the process did in between must not matter
    resumed = build_trainer(state["config"], tmp_path / f"resumed{stop}")
    resumed.load_state_dict(state)
    resumed.fit()
    return straight, resumed
