"""gancli from Python: `gancli.train` runs what `gan train` runs, `gancli.load(...)` gives a model whose samples,
codes and translations equal what `gan sample`, `gan encode` and `gan translate` write on the same seeds, for
every kind of family; what a family cannot do is refused with the command's message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import gancli
from gancli.core.errors import GanError
from gancli.viz import to_uint8_images

QUIET = ["logger=none", "trainer.progress=false", "trainer.steps=2", "trainer.sample_every=2"]
SMALL = ["model.generator.width=4", "model.discriminator.width=4", "trainer.batch_size=4", "dataset.n=32"]
RUNS = {  # one family per kind: noise → image, conditional, style, translation, encoder, sequence
    "dcgan": ["model=dcgan", "dataset.resolution=16", *SMALL],
    "cdcgan": ["model=cdcgan", "dataset.resolution=16", *SMALL],
    "infogan": ["model=infogan", "dataset.resolution=16", *SMALL],
    "stylegan2": [
        "model=stylegan2",
        "dataset.n=32",
        "dataset.resolution=16",
        "trainer.batch_size=4",
        "model.width=4",
        "model.max_width=8",
        "model.z_dim=8",
        "model.w_dim=8",
        "model.mapping_layers=2",
    ],
    "pix2pix": ["model=pix2pix", *SMALL],
    "cyclegan": ["model=cyclegan", *SMALL, "dataset.n=16"],
    "bigan": ["model=bigan", "dataset.resolution=16", "trainer.batch_size=8", "dataset.n=32"],
    "rgan": ["model=rgan", "dataset.n=32", "trainer.batch_size=8", "model.generator.hidden=8"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("api")
    return {name: gancli.train([*QUIET, *o], run_dir=root / name).run_dir for name, o in RUNS.items()}


def gan(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "gancli", *map(str, args)], capture_output=True, text=True, env=env)


@pytest.mark.slow
def test_train_returns_the_run_dir_and_the_summary_gan_train_writes(runs):
    run = runs["dcgan"]
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "config.yaml").is_file()
    assert (run / "train.log").read_text().count("dcgan") >= 1
    resumed = gancli.train(["resume=" + str(run), "trainer.steps=3"])
    assert resumed.run_dir == run and resumed.summary["status"] == "finished" and resumed.summary["step"] == 3
    assert resumed.checkpoint == run / "checkpoints" / "last.pt"


def test_train_refuses_a_bad_override_with_the_commands_message():
    with pytest.raises(GanError, match="unknown model 'dcgna'; choose one of: .*dcgan"):
        gancli.train(["model=dcgna"])
    with pytest.raises(GanError, match="runs one config"):
        gancli.train(["model=dcgan,lsgan"])


@pytest.mark.slow
def test_a_loaded_model_shows_its_networks_config_and_options(runs):
    model = gancli.load(runs["cdcgan"], device="cpu")
    assert model.name == "cdcgan" and model.step == 2 and {"G", "D"} <= set(model.nets)
    assert isinstance(model.config, dict) and model.config["model"]["name"] == "cdcgan"
    model.config["model"]["name"] = "changed"
    assert model.name == "cdcgan"  # config is a copy
    assert "class" in model.sample_options
    with pytest.raises(TypeError):
        model.nets["G"] = None  # read-only view
    assert "cdcgan" in repr(model)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dcgan", "cdcgan", "stylegan2", "rgan"])
def test_samples_equal_gan_samples_file_on_the_same_seed(runs, name, tmp_path):
    model = gancli.load(runs[name], device="cpu")
    x = model.sample(6, seed=3)
    out = tmp_path / "s.npz"
    r = gan("sample", f"ckpt={runs[name]}", "n=6", "seed=3", "format=npz", f"out={out}", "device=cpu")
    assert r.returncode == 0, r.stderr
    written = np.load(out)
    if name == "rgan":  # sequences in the data's units, (N, T, C)
        assert x.shape == written["sequences"].shape
        np.testing.assert_allclose(x.numpy(), written["sequences"], rtol=0, atol=1e-6)
    else:  # images in [0, 1], (N, C, H, W); the file holds them as uint8 (N, H, W, C)
        assert x.dim() == 4 and 0 <= x.min() and x.max() <= 1
        as_uint8 = to_uint8_images(x, low=0.0).numpy()
        assert np.array_equal(as_uint8, written["images"])


@pytest.mark.slow
def test_family_options_are_the_commands_class_is_class_underscore(runs):
    cond = gancli.load(runs["cdcgan"], device="cpu")
    a, b = cond.sample(4, seed=1, class_=2), cond.sample(4, seed=1, class_=2)
    assert torch.equal(a, b) and not torch.equal(a, cond.sample(4, seed=1, class_=3))
    style = gancli.load(runs["stylegan2"], device="cpu")
    assert not torch.equal(style.sample(2, seed=0, trunc=0.5), style.sample(2, seed=0))
    dcgan = gancli.load(runs["dcgan"], device="cpu")
    with pytest.raises(GanError, match="class=1: this model is not class-conditional"):
        dcgan.sample(2, class_=1)
    with pytest.raises(
        GanError, match=r"traverse= is not a sampling option of model 'dcgan'.*\(traverse= is for: infogan"
    ):
        dcgan.sample(2, traverse="c1")


@pytest.mark.slow
def test_encoder_codes_and_reconstructions_equal_gan_encodes(runs, tmp_path):
    model = gancli.load(runs["bigan"], device="cpu")
    x = torch.rand(5, *model.spec["x"].shape)
    codes = model.encode(x)
    assert codes["z"].shape == (5, model.config["model"]["z_dim"])
    rec = model.reconstruct(x)
    assert rec.shape == x.shape and 0 <= rec.min() and rec.max() <= 1
    images = (x * 255).round().to(torch.uint8)
    np.savez(tmp_path / "x.npz", images=images.permute(0, 2, 3, 1).numpy())
    r = gan("encode", f"ckpt={runs['bigan']}", f"input={tmp_path / 'x.npz'}", f"out={tmp_path / 'z.npz'}", "device=cpu")
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(np.load(tmp_path / "z.npz")["z"], model.encode(images)["z"].numpy(), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_translations_equal_gan_translates_and_cyclegan_goes_both_ways(runs, tmp_path):
    model = gancli.load(runs["pix2pix"], device="cpu")
    c, h, w = model.algorithm.input_field("AtoB").shape
    images = torch.randint(0, 256, (3, c, h, w), dtype=torch.uint8)
    y = model.translate(images)
    assert y.shape[0] == 3 and 0 <= y.min() and y.max() <= 1
    np.savez(tmp_path / "x.npz", images=images.permute(0, 2, 3, 1).numpy())
    r = gan("translate", f"ckpt={runs['pix2pix']}", f"input={tmp_path / 'x.npz'}", f"out={tmp_path / 'y.npz'}")
    assert r.returncode == 0, r.stderr
    assert np.array_equal(np.load(tmp_path / "y.npz")["images"], to_uint8_images(y, low=0.0).numpy())
    cycle = gancli.load(runs["cyclegan"], device="cpu")
    x = torch.rand(2, *cycle.algorithm.input_field("BtoA").shape)
    assert cycle.translate(x, direction="BtoA").shape[0] == 2
    with pytest.raises(GanError, match="direction=sideways"):
        cycle.translate(x, direction="sideways")
    panels = cycle.sample(4, seed=0)  # a translator's sample: input and output by name
    assert set(panels) >= {"input", "output"}


@pytest.mark.slow
def test_predict_codes_reads_q_in_batches_from_data_units(runs):
    """InfoGAN's codes read back from [0, 1] images (or the same as uint8), a batch at a time, equal Q's own
    reading of the whole set in the networks' range."""
    model = gancli.load(runs["infogan"], device="cpu")
    x = torch.randint(0, 256, (5, *model.spec["x"].shape), dtype=torch.uint8)
    codes = model.predict_codes(x.float() / 255, batch_size=2)
    cat, cont = model.algorithm.predict_codes(x.float() / 127.5 - 1)
    assert set(codes) == {"categorical", "continuous"} and codes["continuous"].shape == (5, cont.shape[1])
    torch.testing.assert_close(codes["categorical"], cat)
    torch.testing.assert_close(codes["continuous"], cont, rtol=1e-5, atol=1e-5)
    from_uint8 = model.predict_codes(x, batch_size=3)
    torch.testing.assert_close(from_uint8["continuous"], codes["continuous"], rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_what_a_family_cannot_do_is_refused_by_name(runs):
    dcgan = gancli.load(runs["dcgan"], device="cpu")
    with pytest.raises(GanError, match=r"needs a model with an encoder \(aae.*\).*trained as dcgan"):
        dcgan.encode(torch.rand(2, 3, 16, 16))
    with pytest.raises(GanError, match=r"needs a translation model \(pix2pix.*\).*trained as dcgan"):
        dcgan.translate(torch.rand(2, 3, 16, 16))
    with pytest.raises(GanError, match="InfoGAN"):
        dcgan.predict_codes(torch.rand(2, 3, 16, 16))
    with pytest.raises(GanError, match=r"shape \(2, 1, 8, 8\).*\(N, 3, 16, 16\)"):
        gancli.load(runs["bigan"], device="cpu").encode(torch.rand(2, 1, 8, 8))
    with pytest.raises(GanError, match=r"shape \(2, 1, 8, 8\): AtoB takes .*\(N, 1, 32, 32\)"):
        gancli.load(runs["pix2pix"], device="cpu").translate(torch.rand(2, 1, 8, 8))
    with pytest.raises(GanError, match="does not exist"):
        gancli.load(runs["dcgan"] / "nowhere.pt")


@pytest.mark.slow
def test_evaluate_is_gan_eval_in_process(runs, capsys):
    report = gancli.evaluate(ckpt=str(runs["dcgan"] / "checkpoints" / "last.pt"), metrics=["swd"], n=32)
    assert report["protocol"]["scored"].startswith(str(runs["dcgan"]))
    assert (runs["dcgan"] / "checkpoints" / "last.eval.json").is_file()
    assert "swd" in capsys.readouterr().out  # the table gan eval prints
    again = gancli.evaluate(ckpt=str(runs["dcgan"] / "checkpoints" / "last.pt"), metrics=["swd"], n=32, quiet=True)
    assert again["values"] == report["values"] and capsys.readouterr().out == ""


def test_importing_gancli_does_not_import_torch():
    r = subprocess.run([sys.executable, "-c", "import sys, gancli; print('torch' in sys.modules)"], capture_output=True)
    assert r.stdout.strip() == b"False", r.stderr


@pytest.mark.slow
def test_export_from_python_is_gan_exports_file(runs, tmp_path):
    import json

    model = gancli.load(runs["dcgan"], device="cpu")
    path = gancli.export(model, "torchscript", tmp_path / "g.pt")
    contract = json.loads(Path(f"{path}.json").read_text())
    assert contract["model"] == "dcgan" and contract["step"] == model.step and contract["format"] == "torchscript"
    z = torch.randn(3, *contract["latent_size"])
    images = torch.jit.load(str(path))(z)
    assert images.shape == (3, 3, 16, 16) and 0 <= images.min() and images.max() <= 1
    with pytest.raises(GanError, match="format='tflite' is not one of: torchscript, onnx"):
        gancli.export(runs["dcgan"], "tflite")
