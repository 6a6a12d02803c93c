"""`gan export`: every family that can export round-trips through TorchScript (torch.jit.load) and ONNX
(onnxruntime) to what its own sampling draws on the same inputs — TorchScript within 1e-5, ONNX within 1e-4
(outputs in the data's units: images in [0, 1]) — at two batch sizes; the file runs in a process that
cannot import gancli; its contract says what it takes and returns; what cannot export is refused by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import onnxruntime
import pytest
import torch
from conftest import TINY_OVERRIDES, compose_train
from omegaconf import OmegaConf

from gancli.commands.export import export_from_config
from gancli.core.errors import GanError
from gancli.model import load_for_sampling
from gancli.training.run import build_trainer, plain_config

TOLERANCE = {"torchscript": 1e-5, "onnx": 1e-4}
QUIET = [
    "trainer.log_every=1",
    "trainer.sample_every=100",
    "trainer.ckpt_every=100",
    "logger=none",
    "trainer.progress=false",
    "trainer.sample_n=4",
]
IMAGES = [*TINY_OVERRIDES, "trainer.steps=2"]
MLP = ["model.generator.hidden=[16]", "model.discriminator.hidden=[16]"]
SEQUENCES = ["dataset=sines", "dataset.n=64", "trainer.batch_size=8", "trainer.steps=2", *QUIET]
SEQUENCES += ["model.generator.hidden=8", "model.discriminator.hidden=8"]
GROWING = ["dataset.n=64", "dataset.resolution=16", "trainer.batch_size=8", "model.width=4", "model.max_width=8"]
GROWING += ["model.z_dim=8", "model.fade_images=8", "model.stable_images=8", "trainer.steps=5", *QUIET]
STYLE = ["model.w_dim=8", "model.mapping_layers=2"]
STYLEGAN2 = ["model=stylegan2", "dataset.n=64", "dataset.resolution=16", "trainer.batch_size=4", "model.width=4"]
STYLEGAN2 += ["model.max_width=8", "model.z_dim=8", *STYLE, "trainer.steps=2", "trainer.ema=0.9", *QUIET]
CODES = ["dataset.n=64", "dataset.resolution=16", "trainer.batch_size=8", "trainer.steps=2", *QUIET]
AAE_MLP = ["model.encoder.hidden=[16]", "model.decoder.hidden=[16]", "model.discriminator.hidden=[16]"]
BIGAN_MLP = ["model.encoder.hidden=[16]", "model.generator.hidden=[16]", "model.discriminator.hidden=[16]"]
BIGAN_MLP += ["model.discriminator.joint_hidden=[16]"]
TRANSLATION = ["dataset.n=16", "trainer.batch_size=4", "trainer.steps=2", "model.generator.width=4"]
TRANSLATION += ["model.discriminator.width=4", *QUIET]

CASES = {  # name → (overrides, export options)
    "dcgan": (["model=dcgan", *IMAGES, "trainer.ema=0.9"], {}),
    "cdcgan": (["model=cdcgan", *IMAGES], {}),
    "cgan": (["model=cgan", *(o for o in IMAGES if ".width=" not in o), *MLP], {}),
    "gan-points": (
        ["model=gan", "dataset=ring8", "dataset.n=256", "trainer.batch_size=16", "trainer.steps=2", *QUIET],
        {},
    ),
    "sngan": (["model=sngan", *IMAGES], {}),
    "wgan_gp": (["model=wgan_gp", *IMAGES], {}),
    "pacgan": (["model=pacgan", *IMAGES], {}),
    "acgan": (["model=acgan", *IMAGES], {}),
    "infogan": (["model=infogan", *IMAGES], {}),
    "rgan": (["model=rgan", *SEQUENCES], {}),
    "rcgan": (["model=rcgan", *SEQUENCES, "dataset.bands=3", "trainer.ema=0.9"], {}),
    "progan": (["model=progan", *GROWING], {}),
    # lr: so that StyleGAN's constant input is no longer flat, which AdaIN would divide by ~0 (the rounding of
    # any two runtimes then differs by 1e-4)
    "stylegan": (["model=stylegan", *GROWING, *STYLE, "optimizer.lr=0.02"], {"trunc_cutoff": 2}),
    "stylegan2": (STYLEGAN2, {}),
    "stylegan2-conditional": ([*STYLEGAN2, "model.condition.generator=embedding"], {}),
    "aae": (["model=aae", *CODES, *AAE_MLP], {}),
    "aae_supervised": (["model=aae_supervised", *CODES, *AAE_MLP], {}),
    "aae_semi": (["model=aae_semi", *CODES, *AAE_MLP, "model.clusters=5", "model.labelled=20"], {}),
    "aae_dimred": (["model=aae_dimred", *CODES, *AAE_MLP], {}),
    "bigan": (["model=bigan", *CODES, *BIGAN_MLP], {}),
    "pix2pix": (["model=pix2pix", "dataset=shapes_paired", *TRANSLATION], {}),
    "cyclegan-AtoB": (["model=cyclegan", "dataset=shapes_unpaired", *TRANSLATION], {}),
    "cyclegan-BtoA": (["model=cyclegan", "dataset=shapes_unpaired", *TRANSLATION], {"direction": "BtoA"}),
}
ISOLATED = {"dcgan", "cdcgan", "stylegan2", "pix2pix"}  # also run where gancli cannot be imported


def _train(tmp_path, overrides) -> str:
    build_trainer(plain_config(compose_train(overrides)), tmp_path / "run").fit()
    return str(tmp_path / "run" / "checkpoints" / "last.pt")


def _export(ckpt, fmt, out, **options):
    keys = {"level": None, "trunc_cutoff": None, "direction": None, "dropout": None}
    cfg = {"ckpt": ckpt, "format": fmt, "out": str(out), "ema": True, **keys, **options}
    return export_from_config(OmegaConf.create(cfg))


def _own_samples(algorithm, options: dict, names: list[str], n: int, seed: int):
    """gancli's own sampling (`gan sample`'s, before its writers) of n samples, and the inputs that drew
    them, by the exported file's input names: the panel's recorded conditions where it keeps them, the same
    seeded draws otherwise."""
    exported = algorithm.export({k: v for k, v in options.items() if k != "psi"})
    gen = torch.Generator().manual_seed(seed)
    psi = options.get("psi", 1.0)
    sample_options = {"trunc": psi, "trunc_cutoff": options.get("trunc_cutoff")} if "psi" in names else {}
    sample_options |= {"direction": options["direction"]} if "direction" in options else {}
    panels = algorithm.sample(sample_options, n, n, gen, 3, grid=False)
    if "output" in panels:  # translation: the test split's inputs and their translations, in [-1, 1]
        return {"image": (panels["input"].data + 1) / 2}, (panels["output"].data.clamp(-1, 1) + 1) / 2
    panel = panels["samples"]
    drawn = dict(zip(exported.about, exported.inputs(n, torch.Generator().manual_seed(seed))))
    inputs = {k: panel.meta.get(k, drawn[k]).cpu() for k in names if k != "psi"}
    if "psi" in names:
        inputs["psi"] = torch.tensor(float(psi))
    want = (panel.data.clamp(-1, 1) + 1) / 2 if panel.kind == "image" else panel.data
    return inputs, want


def _close(got, want, tol, what):
    got = got.detach() if isinstance(got, torch.Tensor) else torch.from_numpy(np.asarray(got))
    assert got.shape == want.shape, what
    diff = (got - want).abs().max().item()
    assert diff <= tol, f"{what}: max |difference| {diff:.3g} > {tol:g}"


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_a_family_exports_files_that_match_its_own_sampling(case, tmp_path):
    overrides, options = CASES[case]
    ckpt = _train(tmp_path, overrides)
    files = {fmt: _export(ckpt, fmt, tmp_path / f"g.{fmt}", **options) for fmt in ("torchscript", "onnx")}
    contract = json.loads((tmp_path / "g.onnx.json").read_text())
    names = [i["name"] for i in contract["inputs"]]
    algorithm, spec, state = load_for_sampling(ckpt, torch.device("cpu"))
    assert contract["model"] == state["config"]["model"]["name"] and contract["step"] == state["step"]
    assert contract["ema"] == ("trainer.ema=0.9" in overrides)
    script = torch.jit.load(str(files["torchscript"]))
    assert '"cpu"' not in str(script.inlined_graph)  # no device fixed while tracing: it follows its inputs
    session = onnxruntime.InferenceSession(str(files["onnx"]), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == names
    runs = {}
    for n in (1, 5):  # a batch axis of any size; neither is the traced batch (2)
        inputs, want = _own_samples(algorithm, {**options, **({"psi": 0.7} if "psi" in names else {})}, names, n, n)
        assert list(inputs) == names
        assert list(want.shape) == [n, *contract["output"]["shape"][1:]]
        with torch.no_grad():
            _close(script(*inputs.values()), want, TOLERANCE["torchscript"], f"{case} TorchScript, batch {n}")
        onnx_out = session.run(None, {k: v.numpy() for k, v in inputs.items()})[0]
        _close(onnx_out, want, TOLERANCE["onnx"], f"{case} ONNX, batch {n}")
        runs[n] = (inputs, want)
    if contract["output"]["kind"] == "image":
        assert contract["output"]["range"] == [0.0, 1.0] and 0 <= runs[5][1].min() and runs[5][1].max() <= 1
    if case in ISOLATED:
        _runs_without_gancli(tmp_path, files, names, *runs[5])


def _runs_without_gancli(tmp_path, files, names, inputs, want):
    """The two files in a fresh interpreter (-I: no PYTHONPATH, no working directory on sys.path) where any
    import of gancli fails: torch alone loads the TorchScript file, onnxruntime alone the ONNX one."""
    np.savez(tmp_path / "inputs.npz", **{k: v.numpy() for k, v in inputs.items()})
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["gancli"] = None  # from here on, `import gancli` raises
        import numpy as np, onnxruntime, torch
        x = np.load("inputs.npz")
        names = {names!r}
        g = torch.jit.load({str(files["torchscript"])!r})
        with torch.no_grad():
            ts = g(*[torch.from_numpy(x[k]) for k in names]).numpy()
        s = onnxruntime.InferenceSession({str(files["onnx"])!r}, providers=["CPUExecutionProvider"])
        ox = s.run(None, {{k: x[k] for k in names}})[0]
        assert not any(m.startswith("gancli.") for m in sys.modules)
        np.savez("outputs.npz", torchscript=ts, onnx=ox)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    r = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    out = np.load(tmp_path / "outputs.npz")
    for fmt in ("torchscript", "onnx"):
        _close(out[fmt], want, TOLERANCE[fmt], f"{fmt} without gancli")


@pytest.fixture
def dcgan_ckpt(tmp_path):
    return _train(tmp_path, ["model=dcgan", *IMAGES, "trainer.steps=1"])


def test_the_contract_names_what_the_file_takes_and_returns(dcgan_ckpt, tmp_path):
    out = _export(dcgan_ckpt, "torchscript", tmp_path / "out" / "generator.pt")
    assert out == tmp_path / "out" / "generator.pt" and out.is_file()
    contract = json.loads((tmp_path / "out" / "generator.pt.json").read_text())
    assert contract["inputs"] == [{"name": "z", "shape": ["batch", 100], "dtype": "float32", "about": "noise, N(0, I)"}]
    assert contract["output"]["shape"] == ["batch", 3, 16, 16] and contract["output"]["range"] == [0.0, 1.0]
    assert contract["latent_size"] == [100] and contract["classes"] is None and contract["step"] == 1
    assert (contract["model"], contract["format"], contract["runtime"]) == ("dcgan", "torchscript", "torch.jit.load")
    assert contract["gancli_version"] and contract["checked"]["max_abs_difference"] <= 1e-5
    g = torch.jit.load(str(out))
    for n in (1, 7):
        assert g(torch.randn(n, 100)).shape == (n, 3, 16, 16)
    assert not list(tmp_path.glob("out/.*.tmp"))


def test_a_bad_format_and_an_option_the_model_does_not_take_are_refused(dcgan_ckpt, tmp_path):
    with pytest.raises(GanError, match=r"format='tflite' is not one of: torchscript, onnx\."):
        _export(dcgan_ckpt, "tflite", tmp_path / "g.tflite")
    with pytest.raises(GanError, match=r"direction= is not an export option of model 'dcgan' \(GAN\); it takes none"):
        _export(dcgan_ckpt, "torchscript", tmp_path / "g.pt", direction="BtoA")
    assert not list(tmp_path.glob("g.*"))


def _cli(*args, cwd) -> subprocess.CompletedProcess:
    """`gan export ...` in a process of its own (its Hydra app; the dispatcher only adds the name)."""
    code = "import sys; from gancli.cli.commands import export; raise SystemExit(export(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_the_command_writes_the_file_and_its_contract(dcgan_ckpt, tmp_path):
    r = _cli(f"ckpt={dcgan_ckpt}", "format=onnx", "out=g.onnx", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "g.onnx").is_file() and json.loads((tmp_path / "g.onnx.json").read_text())["opset"] == 17


def test_the_command_refuses_bad_values_in_one_paragraph_before_any_work(tmp_path):
    r = _cli("ckpt=run/checkpoints/last.pt", "format=tflite", cwd=tmp_path)
    assert r.returncode == 2 and "format='tflite' is not allowed: format takes one of: torchscript, onnx" in r.stderr
    r = _cli("ckpt=run/checkpoints/last.pt", "direction=sideways", cwd=tmp_path)
    assert r.returncode == 2 and "direction='sideways' is not allowed: direction takes AtoB or BtoA" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "model.pt").exists()


def test_a_family_without_an_export_is_refused_by_name(toy_plugin, tmp_path):
    ckpt = _train(tmp_path, ["model=toy_aae", "dataset.n=64", "dataset.resolution=8", "trainer.steps=1", *QUIET])
    with pytest.raises(GanError, match=r"model 'toy_aae' \(ToyAAE\) cannot be exported: its family defines no"):
        _export(ckpt, "torchscript", tmp_path / "g.pt")


def test_a_progan_checkpoint_written_mid_fade_is_refused_and_its_finished_level_exports(tmp_path):
    # stage 0 (4 px) is one step of 8 images, the fade into 8 px six: the last of 3 steps trains at α = 1/6
    ckpt = _train(tmp_path, ["model=progan", *GROWING, "model.fade_images=48", "trainer.steps=3"])
    with pytest.raises(GanError, match=r"written mid-fade \(level 1, 8 px, fading in at α = 0\.17\).*level=0"):
        _export(ckpt, "torchscript", tmp_path / "g.pt")
    with pytest.raises(GanError, match=r"level=1: this checkpoint has finished levels 0 to 0"):
        _export(ckpt, "torchscript", tmp_path / "g.pt", level=1)
    _export(ckpt, "torchscript", tmp_path / "g.pt", level=0)
    contract = json.loads((tmp_path / "g.pt.json").read_text())
    assert contract["details"] == {"level": 0, "level_resolution": 4, "upsampled_to": 16}
    algorithm, _, _ = load_for_sampling(ckpt, torch.device("cpu"))
    panel = algorithm.sample({"level": 0}, 3, 3, torch.Generator().manual_seed(0), 3)["samples"]
    _close(
        torch.jit.load(str(tmp_path / "g.pt"))(panel.meta["z"]),
        (panel.data.clamp(-1, 1) + 1) / 2,
        1e-5,
        "progan level 0",
    )


@pytest.mark.slow
def test_pix2pix_keeps_its_test_time_dropout_in_torchscript_and_turns_it_off_on_request(tmp_path):
    ckpt = _train(tmp_path, ["model=pix2pix", "dataset=shapes_paired", "dataset.resolution=64", *TRANSLATION])
    algorithm, _, _ = load_for_sampling(ckpt, torch.device("cpu"))
    x = torch.rand(2, *algorithm.input_field("AtoB").shape, generator=torch.Generator().manual_seed(0))
    g = torch.jit.load(str(_export(ckpt, "torchscript", tmp_path / "g.pt")))
    assert json.loads((tmp_path / "g.pt.json").read_text())["stochastic"] is True
    with torch.no_grad():
        torch.manual_seed(3)
        got = g(x)
        torch.manual_seed(3)  # gan translate's dropout, drawing the same random numbers
        _close(got, (algorithm.translate(x * 2 - 1) + 1) / 2, TOLERANCE["torchscript"], "pix2pix with dropout")
        assert not torch.equal(g(x), got)  # other random numbers, another translation
    with pytest.raises(GanError, match=r"format=onnx cannot carry pix2pix's randomness .*dropout=false"):
        _export(ckpt, "onnx", tmp_path / "g.onnx")
    files = {fmt: _export(ckpt, fmt, tmp_path / f"fixed.{fmt}", dropout=False) for fmt in ("torchscript", "onnx")}
    assert json.loads((tmp_path / "fixed.onnx.json").read_text())["stochastic"] is False
    with torch.no_grad():
        fixed = torch.jit.load(str(files["torchscript"]))(x)
        assert torch.equal(torch.jit.load(str(files["torchscript"]))(x), fixed)
    session = onnxruntime.InferenceSession(str(files["onnx"]), providers=["CPUExecutionProvider"])
    _close(session.run(None, {"image": x.numpy()})[0], fixed, TOLERANCE["onnx"], "pix2pix without dropout")
