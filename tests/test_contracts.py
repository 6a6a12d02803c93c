"""The contracts every family builds on, proven with families that are not GANs (tests/plugins): the
trainer talks only to the Algorithm interface; several networks and optimizers, BatchNorm + EMA, own
state, own panels and sampling options; phases that change networks and batch size; callbacks; plugins
from outside the package; named-field data; the import layering; old checkpoints."""

from __future__ import annotations

import ast
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import PLUGINS, assert_same_state, compose_train, straight_and_resumed
from omegaconf import OmegaConf
from PIL import Image

import gancli
from gancli.algorithms.base import Algorithm
from gancli.commands.sample import sample_from_config
from gancli.core.checkpoint import load_checkpoint
from gancli.core.errors import GanError
from gancli.training.callbacks import Callback
from gancli.training.run import build_trainer, plain_config
from gancli.viz.render import LABEL_HEIGHT

QUIET = [
    "trainer.log_every=1",
    "trainer.sample_every=3",
    "trainer.ckpt_every=100",
    "logger=none",
    "trainer.progress=false",
    "trainer.sample_n=8",
]
AAE = [
    "model=toy_aae",
    "dataset.n=128",
    "dataset.resolution=8",
    "trainer.batch_size=16",
    "trainer.ema=0.9",
    "trainer.ema_bn_batches=2",
]
GROW = [
    "model=toy_grow",
    "dataset=ring8",
    "dataset.n=512",
    "model.grow_at=4",
    "trainer.ckpt_every=1",
    "trainer.ema=0.9",
    "trainer.keep=20",
]
DATA = Path(__file__).parent / "data"


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


# ------------------------------------------------------------------------------- a family that is not a GAN


def test_a_family_that_is_not_a_gan_trains_resumes_draws_and_samples(toy_plugin, tmp_path):
    cfg = plain_config(compose_train([*QUIET, *AAE, "trainer.steps=9"]))
    straight, resumed = straight_and_resumed(cfg, tmp_path, 4)
    algo = straight.algorithm
    assert type(algo).__name__ == "ToyAAE" and not hasattr(algo, "latent")
    assert set(algo.nets) == {"encoder", "decoder", "critic"} and len(algo.optimizers) == 3
    for key in ("nets", "optimizers", "ema", "algorithm"):
        assert_same_state(straight.state_dict()[key], resumed.state_dict()[key], key)
    assert set(straight.state_dict()["ema"]) == {"decoder"}
    assert algo.extra_state()["code_std"] != 1.0  # its own state moved, and was restored exactly
    # BatchNorm in the averaged decoder: statistics re-estimated through the family's ema_forward
    live, avg = algo.nets["decoder"].state_dict(), straight.ema.copies["decoder"].state_dict()
    assert not torch.equal(live["net.1.running_mean"], avg["net.1.running_mean"])
    # its panels, side by side under their names: 3 grids of 8 images of 8 px, 4 per row
    grid_w, grid_h = 4 * 10 + 2, 2 * 10 + 2
    assert Image.open(tmp_path / "straight" / "final.png").size == (3 * grid_w + 2 * 6, 2 * LABEL_HEIGHT + grid_h)
    lines = [json.loads(ln) for ln in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert {"loss/reconstruction", "loss/D", "loss/G", "code_std"} <= set(lines[-1])
    # sampling from the checkpoint alone, with the family's own option
    ckpt = tmp_path / "straight" / "checkpoints" / "last.pt"
    sample_from_config(sample_cfg(ckpt=str(ckpt), format="npz", n=5, out=str(tmp_path / "s.npz"), temperature=0.5))
    z = np.load(tmp_path / "s.npz")
    assert z["images"].shape == (5, 8, 8, 3) and z["z"].shape == (5, 4)
    sample_from_config(sample_cfg(ckpt=str(ckpt), out=str(tmp_path / "s.png")))
    assert Image.open(tmp_path / "s.png").size == (3 * 10 + 2, 2 * 10 + 2)


def test_a_sampling_option_the_model_does_not_take_lists_those_it_does(toy_plugin, tmp_path):
    cfg = plain_config(compose_train([*QUIET, *AAE, "trainer.steps=1"]))
    build_trainer(cfg, tmp_path).fit()
    ckpt = str(tmp_path / "checkpoints" / "last.pt")
    with pytest.raises(
        GanError,
        match=r"traverse= is not a sampling option of model 'toy_aae'.*supports: "
        r"temperature=\..*traverse= is for: infogan",
    ):
        sample_from_config(sample_cfg(ckpt=ckpt, traverse="c2"))
    with pytest.raises(GanError, match=r"class= is not .*temperature="):
        sample_from_config(sample_cfg(ckpt=ckpt, **{"class": 1}))
    sample_from_config(sample_cfg(ckpt=ckpt, out=str(tmp_path / "x.png"), interpolate=False))  # false: not asked


def test_interpolation_only_writes_pictures(compose_cfg, tiny_overrides, tmp_path):
    build_trainer(plain_config(compose_cfg([*tiny_overrides, "trainer.steps=1"])), tmp_path).fit()
    with pytest.raises(GanError, match="interpolate= draws png output, not format=npz"):
        sample_from_config(sample_cfg(ckpt=str(tmp_path / "checkpoints" / "last.pt"), format="npz", interpolate=True))


# ------------------------------------------------------------------------------- phases


@pytest.mark.slow
def test_a_growing_family_resumes_exactly_from_before_and_after_its_phase_boundary(toy_plugin, tmp_path):
    cfg = plain_config(compose_train([*QUIET, *GROW, "trainer.steps=8"]))
    for stop in (3, 6):  # checkpoints written in phase 0 and in phase 1
        straight, resumed = straight_and_resumed(cfg, tmp_path / str(stop), stop)
        for key in ("nets", "optimizers", "ema"):
            assert_same_state(straight.state_dict()[key], resumed.state_dict()[key], key)
    algo = straight.algorithm
    assert algo.phase == 1 and len(algo.G.blocks) == 1 and straight.stream.batch_size == 32
    assert sum(p.numel() for g in algo.optimizers["G"].param_groups for p in g["params"]) == sum(
        p.numel() for p in algo.G.parameters()
    )  # the rebuilt optimizer has the new block
    assert set(straight.ema.copies["G"].state_dict()) == set(algo.G.state_dict())  # the EMA grew with G
    lines = [json.loads(ln) for ln in (tmp_path / "6" / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert [ln["batch"] for ln in lines] == [16.0] * 4 + [32.0] * 4  # the stream served the new batch size
    early, late = (load_checkpoint(tmp_path / "6" / "straight" / "checkpoints" / f"step_000000{k}.pt") for k in (3, 6))
    assert (early["phase"], late["phase"]) == (0, 1) and late["data"]["batch_size"] == 32
    # sampling rebuilds the network the checkpoint was at
    for k in (3, 6):
        sample_from_config(
            sample_cfg(
                ckpt=str(tmp_path / "6" / "straight" / "checkpoints" / f"step_000000{k}.pt"),
                format="npy",
                out=str(tmp_path / f"p{k}.npy"),
            )
        )
        assert np.load(tmp_path / f"p{k}.npy").shape == (6, 2)


class _Grower(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(2, 2)
        self.extra = torch.nn.ModuleList()


def test_ema_rebind_keeps_averages_and_takes_new_layers():
    from gancli.training.ema import EMA

    live = _Grower()
    ema = EMA({"G": live}, decay=0.5)
    with torch.no_grad():
        live.a.weight.add_(2.0)
    ema.update({"G": live}, step=0)
    averaged = ema.copies["G"].a.weight.clone()
    live.extra.append(torch.nn.Linear(2, 3))
    ema.rebind({"G": live})
    copy_ = ema.copies["G"]
    assert torch.equal(copy_.a.weight, averaged) and torch.equal(copy_.extra[0].weight, live.extra[0].weight)
    assert not any(p.requires_grad for p in copy_.parameters()) and not copy_.training


# ------------------------------------------------------------------------------- callbacks


class Exploding(Callback):
    def on_interval(self, trainer):
        raise RuntimeError(f"boom at {trainer.step}")


class Counting(Callback):
    def __init__(self, every: int = 0, start: int = 0):
        super().__init__(every)
        self.calls = start

    def on_interval(self, trainer):
        self.calls += 1
        return {"calls": self.calls}

    def state_dict(self):
        return {"calls": self.calls}

    def load_state_dict(self, state):
        self.calls = state["calls"]


def test_a_failing_callback_is_reported_and_the_run_finishes_with_its_checkpoint(compose_cfg, tiny_overrides, tmp_path):
    cfg = plain_config(
        compose_cfg(
            [
                *tiny_overrides,
                "trainer.steps=6",
                "trainer.log_every=1",
                "+trainer.callbacks.boom._target_=test_contracts.Exploding",
                "+trainer.callbacks.boom.every=2",
                "+trainer.callbacks.count._target_=test_contracts.Counting",
                "+trainer.callbacks.count.every=3",
            ]
        )
    )
    summary = build_trainer(copy.deepcopy(cfg), tmp_path).fit(stop_after=4)
    assert summary["status"] == "stopped"
    assert [e.split(" (")[0] for e in summary["callback_errors"]] == [
        "callback 'boom' failed at step 2",
        "callback 'boom' failed at step 4",
    ]
    assert "RuntimeError: boom at 2" in summary["callback_errors"][0]
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["step"] == 4 and state["callbacks"] == {"boom": {}, "count": {"calls": 1}}
    resumed = build_trainer(state["config"], tmp_path)
    resumed.load_state_dict(state)
    summary = resumed.fit()
    assert summary["status"] == "finished" and summary["metrics"] == {"count/calls": 2.0}
    logged = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(ln["step"], ln["count/calls"]) for ln in logged if "count/calls" in ln] == [(3, 1.0), (6, 2.0)]


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"every": 2}, "needs a _target_"),
        ({"_target_": "no_such_module.Thing"}, "cannot build no_such_module.Thing"),
        ({"_target_": "collections.OrderedDict"}, "is not a gancli.training.callbacks.Callback"),
    ],
)
def test_bad_callbacks_are_named_before_training(compose_cfg, tiny_overrides, tmp_path, spec, message):
    cfg = plain_config(compose_cfg(tiny_overrides))
    cfg["trainer"]["callbacks"] = {"mine": spec}
    with pytest.raises(GanError, match=rf"trainer.callbacks.mine.*{message}"):
        build_trainer(cfg, tmp_path)


# ------------------------------------------------------------------------------- plugins, commands


def run_gan(*args, plugin: bool = True, cwd=None):
    env = {**os.environ, "COLUMNS": "200"}
    if plugin:
        env["PYTHONPATH"] = os.pathsep.join([str(PLUGINS), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "gancli", *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


@pytest.mark.slow
def test_a_plugin_package_adds_a_family_its_presets_a_dataset_and_a_command(tmp_path):
    r = run_gan("--help")
    assert r.returncode == 0 and "toyinfo" in r.stdout and "a plugin's own command" in r.stdout
    assert run_gan("--help", plugin=False).stdout.count("toyinfo") == 0
    assert "toyplugin says hello" in run_gan("toyinfo").stdout  # a full Hydra app of its own
    assert "toyplugin says hi" in run_gan("toyinfo", "greeting=hi").stdout
    r = run_gan("toyinfo", "greting=hi")
    assert r.returncode == 2 and "unknown config key 'greting'" in r.stderr and "greeting" in r.stderr
    r = run_gan("train", "--help")
    assert "toy_aae" in r.stdout and "toy_pairs" in r.stdout  # its presets join the config groups
    r = run_gan(
        "train",
        "model=toy_aae",
        "dataset.n=64",
        "dataset.resolution=8",
        "trainer.batch_size=8",
        "trainer.steps=2",
        "logger=none",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert r.returncode == 0, r.stderr
    r = run_gan(
        "sample",
        f"ckpt={tmp_path / 'run' / 'checkpoints' / 'last.pt'}",
        "temperature=0.5",
        "n=4",
        f"out={tmp_path / 's.png'}",
    )
    assert r.returncode == 0 and (tmp_path / "s.png").is_file(), r.stderr
    r = run_gan("sample", f"ckpt={tmp_path / 'run' / 'checkpoints' / 'last.pt'}", "temperature=hot")
    assert r.returncode == 2 and "temperature" in r.stderr and "Traceback" not in r.stderr
    r = run_gan("train", "model=toy_aae", plugin=False)
    assert r.returncode == 2 and "unknown model 'toy_aae'" in r.stderr


def test_a_plugin_dataset_serves_its_own_fields(toy_plugin, compose_cfg):
    from gancli.data import build_dataset

    source = build_dataset(compose_cfg(["dataset=toy_pairs"]).dataset)
    assert set(source.spec.fields) == {"a", "b"} and source.spec.groups == (("a", "b"),)
    batch = next(source.stream(8, torch.device("cpu"), 0))
    assert torch.allclose(batch["b"], torch.stack([-batch["a"][:, 1], batch["a"][:, 0]], 1))  # pairs together


def test_a_gan_on_data_without_an_x_field_is_refused_by_name(toy_plugin, compose_cfg, tmp_path):
    cfg = plain_config(compose_cfg(["dataset=toy_pairs", "model=gan"]))
    with pytest.raises(GanError, match=r"sample field 'x'.*a: points \(2,\), b: points \(2,\)"):
        build_trainer(cfg, tmp_path)


def test_a_broken_plugin_is_one_clear_error(tmp_path, monkeypatch):
    import gancli.core.plugins
    from gancli.algorithms import ALGORITHMS

    (tmp_path / "broken_plugin").mkdir()
    (tmp_path / "broken_plugin" / "__init__.py").write_text("raise ImportError('needs a library that is missing')\n")
    meta = tmp_path / "broken_plugin-1.0.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (meta / "entry_points.txt").write_text("[gancli.core.plugins]\nbroken = broken_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    gancli.core.plugins.reset()
    try:
        with pytest.raises(GanError, match="plugin 'broken'.*needs a library that is missing"):
            ALGORITHMS.get("nothing_by_this_name")
    finally:
        gancli.core.plugins.reset()


# ------------------------------------------------------------------------------- structure


def _gancli_imports(path: Path) -> set[str]:
    """The gancli subpackages/modules a file imports (at any depth of the file)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module]
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
            else []
        )
        for name in names:
            parts = name.split(".")
            if parts[0] == "gancli" and len(parts) > 1:
                found.add(parts[1])
    return found


ALLOWED = {  # what each part may import besides itself: cli → commands, training → algorithms, metrics → the rest → core
    "core": set(),
    "data": {"core"},
    "viz": {"core", "data"},
    "nets": {"core", "data"},
    "losses": {"core"},
    "algorithms": {"core", "data", "viz", "nets", "losses"},
    "metrics": {"core", "data"},
    "training": {"core", "data", "viz", "algorithms", "metrics"},
    "model": {"core", "data", "viz", "algorithms"},
    "commands": {"core", "data", "viz", "algorithms", "metrics", "model"},
}


def test_imports_run_one_way():
    root = Path(gancli.__file__).parent
    for path in sorted(root.rglob("*.py")):
        part = path.relative_to(root).parts[0].removesuffix(".py")
        if part not in ALLOWED:
            continue  # cli (the top), __init__, __main__
        wrong = _gancli_imports(path) - ALLOWED[part] - {part}
        assert not wrong, f"{path.relative_to(root)} ({part}) imports {sorted(wrong)}"


def test_the_trainer_reads_only_what_the_algorithm_interface_defines():
    """Every attribute the training layer reads off an algorithm exists on the Algorithm base class, and
    `gan translate` reads only the Translator interface."""
    from gancli.algorithms.translation import Translator

    base = Algorithm.__new__(Algorithm)
    Algorithm.__init__(base, None, None, torch.device("cpu"), None)
    known = set(dir(Algorithm)) | set(vars(base))
    root = Path(gancli.__file__).parent
    readers = {
        path: (("algorithm", "algo"), known)
        for path in [
            *(root / "training").glob("*.py"),
            root / "model.py",
            root / "commands" / "evaluate.py",
            root / "commands" / "export.py",
        ]
    }
    readers[root / "commands" / "translate.py"] = (("algorithm", "algo", "translator"), known | set(dir(Translator)))
    for path, (names, allowed) in readers.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute):
                owner = node.value
                name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
                if name in names:
                    assert node.attr in allowed, f"{path.name} reads {name}.{node.attr}, which its interface lacks"


# ------------------------------------------------------------------------------- old checkpoints


@pytest.mark.parametrize("name", ["v2_dcgan_ema", "v2_cgan_ring8"])
def test_checkpoints_of_the_previous_format_still_sample_the_same_and_resume(name, tmp_path):
    ckpt = DATA / f"{name}.pt"
    assert load_checkpoint(ckpt)["version"] == 2
    sample_from_config(sample_cfg(ckpt=str(ckpt), format="npz", out=str(tmp_path / "s.npz")))
    now, then = np.load(tmp_path / "s.npz"), np.load(DATA / f"{name}_samples.npz")
    assert set(now) == set(then)
    for key in then:  # images and labels bit for bit; float points to the last bits, which vary by CPU (SIMD width)
        if np.issubdtype(then[key].dtype, np.floating):
            np.testing.assert_allclose(now[key], then[key], rtol=0, atol=1e-6, err_msg=key)
        else:
            assert np.array_equal(now[key], then[key]), key
    state = load_checkpoint(ckpt)
    state["config"]["trainer"]["steps"] = state["step"] + 1
    trainer = build_trainer(state["config"], tmp_path / "run")
    trainer.load_state_dict(state)
    assert trainer.fit()["step"] == state["step"] + 1


def test_capabilities_are_read_from_what_a_family_can_do():
    """Commands and metrics ask core.capabilities, not the family classes: each family has exactly the
    capabilities its methods give it."""
    from gancli.algorithms import ALGORITHMS
    from gancli.core.capabilities import Encodes, PredictsCodes, Translates

    expected = {
        "pix2pix": {Translates},
        "cyclegan": {Translates},
        "infogan": {PredictsCodes},
        "gan": set(),
        "stylegan2": set(),
        "aae": {Encodes},
        "aae_categorical": {Encodes},
        "bigan": {Encodes},
    }
    for name, caps in expected.items():
        family = ALGORITHMS.get(name)
        model = family.__new__(family)
        assert {c for c in (Encodes, PredictsCodes, Translates) if isinstance(model, c)} == caps, name
