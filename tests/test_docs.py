"""The documentation tells the truth: every `gan` command in the README and the guides that needs no download
and no GPU runs as written (with tiny sizes appended), every relative link resolves, and the generated
reference is up to date."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs" / "guide").glob("*.md"))]
NEEDS_DOWNLOAD = ("cifar10", "celeba", "mnist", "fashion_mnist")
TINY_IMAGES = [
    "model.generator.width=8",
    "model.discriminator.width=8",
    "trainer.batch_size=8",
    "trainer.steps=2",
    "trainer.sample_every=1",
    "logger=none",
    "trainer.progress=false",
    "trainer.sample_n=8",
]


ENV = re.compile(r"^((?:[A-Z_]+=\S+\s+)*)(gan .*)$")


def commands(path: Path) -> list[tuple[dict, str]]:
    """(environment, `gan ...` line) of the file's code blocks, comments stripped (`pip install ... &&
    gan train` too); `NAME=value gan ...` sets NAME, a path relative to the repository's root."""
    found, inside = [], False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            inside = not inside
            continue
        if inside:
            m = ENV.match(line.split("&&")[-1].split("  #")[0].strip())
            if m:
                env = dict(kv.split("=", 1) for kv in m[1].split())
                found.append(({k: str(ROOT / v) for k, v in env.items()}, m[2]))
    return found


def runnable(cmd: str) -> bool:
    return (
        not any(word in cmd for word in NEEDS_DOWNLOAD)
        and "cuda" not in cmd
        and "hydra/launcher" not in cmd
        and "fetch=" not in cmd
        and "hydra/sweeper" not in cmd
    )  # optional extras


def gan(args: list[str], cwd: Path, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", **(extra_env or {})}
    return subprocess.run(
        [sys.executable, "-m", "gancli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


TINY_EVAL = [
    "n=64",
    "kid_subset_size=16",
    "kid_subsets=2",
    "reference_n=512",
    "classifier_epochs=1",
    "features=classifier",
]


def tiny(args: list[str], run_dir: Path) -> list[str]:
    """The command's own overrides, then sizes that make it seconds long (later overrides win)."""
    cache = f"cache_dir={run_dir.parent / 'eval-cache'}"
    if args[0] == "eval":
        data = ["dataset.resolution=16", "dataset.n=512"] if "dataset=shapes" in args else []
        return [*args, *TINY_EVAL, cache, *data]
    if any(a.startswith("resume=") for a in args):  # extending a run: a few steps more than it had
        return [re.sub(r"^trainer.steps=\d+$", "trainer.steps=4", a) for a in args]
    if args[0] != "train" or any(a.startswith(("--help", "--cfg")) for a in args):
        return args
    extra = list(TINY_IMAGES)
    points = any(a in ("dataset=ring8", "dataset=grid25") for a in args)
    folder = any(a == "dataset=image_folder" for a in args)
    if any(a in ("model=pix2pix", "model=pix2pixhd", "model=cyclegan") for a in args):
        extra += ["dataset.n=16", "dataset.resolution=32", "trainer.batch_size=4"]
    elif any(a in ("model=rgan", "model=rcgan") for a in args):
        extra = [e for e in extra if ".width=" not in e] + ["model.generator.hidden=8", "model.discriminator.hidden=8"]
        if not any(a.startswith("dataset=timeseries_file") for a in args):
            extra.append("dataset.n=64")
    elif points:
        extra = [e for e in extra if ".width=" not in e] + ["dataset.n=512"]
    elif any(a in ("model=progan", "model=stylegan", "model=stylegan2") for a in args):
        extra = [e for e in extra if ".width=" not in e] + [
            "dataset.n=64",
            "dataset.resolution=16",
            "model.width=4",
            "model.max_width=8",
            "model.z_dim=8",
        ]
        if "model=progan" not in args:
            extra += ["model.w_dim=8", "model.mapping_layers=2"]
        if "model=stylegan2" not in args:
            extra += ["model.fade_images=8", "model.stable_images=8"]
    elif any(a.startswith(("model=aae", "model=bigan")) for a in args):
        g = "generator" if "model=bigan" in args else "decoder"
        extra = [e for e in extra if ".width=" not in e] + [
            "dataset.n=64",
            "dataset.resolution=16",
            "model.encoder.hidden=[16]",
            f"model.{g}.hidden=[16]",
            "model.discriminator.hidden=[16]",
        ]
    elif any(a == "model=toy_aae" for a in args):
        extra = [e for e in extra if ".width=" not in e] + ["dataset.n=64", "dataset.resolution=8"]
    elif not folder:
        extra += ["dataset.n=64", "dataset.resolution=16"]
    else:
        extra += ["dataset.resolution=16"]
    if any(a.startswith("model=") and a.split("=")[1] in ("gan", "cgan") for a in args):
        extra = [e for e in extra if ".width=" not in e] + [
            "model.generator.hidden=[16]",
            "model.discriminator.hidden=[16]",
        ]
    if any(a.startswith("eval.") for a in args):
        extra += [f"eval.{e}" for e in TINY_EVAL] + [f"eval.{cache}"]
    if any(a.startswith("logger=") for a in args):  # the page's own choice of loggers (a later logger= would win)
        extra = [e for e in extra if not e.startswith("logger=")]
    where = f"hydra.sweep.dir={run_dir}-sweep" if "-m" in args else f"hydra.run.dir={run_dir}"
    return [*args, *extra, where]


def photo_folder(root: Path) -> Path:
    from PIL import Image

    for cls, colour in (("cats", (200, 30, 30)), ("dogs", (30, 30, 200))):
        (root / cls).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (20, 20), (colour[0], 20 * i, colour[2])).save(root / cls / f"{i}.png")
    return root


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS, ids=[p.name for p in DOCS])
def test_every_command_in_the_docs_runs_as_written(doc, tmp_path):
    cmds = [(env, c) for env, c in commands(doc) if runnable(c)]
    if not cmds:
        pytest.skip(f"{doc.name} shows no command that runs offline on a CPU")
    photos = photo_folder(tmp_path / "photos")
    run = tmp_path / "run"
    first = gan(tiny(["train"], run), tmp_path)  # the <run> the commands refer to
    assert first.returncode == 0, first.stderr
    assert gan(["sample", f"ckpt={run}", "n=64", "format=npz", "out=samples.npz"], tmp_path).returncode == 0
    np.savez(tmp_path / "series.npz", x=np.random.default_rng(0).standard_normal((40, 12, 2)))  # the guides' files
    (tmp_path / "sensor.csv").write_text("\n".join(f"{t},{t % 7}" for t in range(200)) + "\n")
    (tmp_path / "outlines").mkdir()
    for i in range(2):
        PILImage.new("L", (32, 32), 255 * i).save(tmp_path / "outlines" / f"o{i}.png")
    current = run  # <run>: the last run a command of the page trained
    for i, (env, cmd) in enumerate(cmds):
        text = cmd.replace("<run>", str(current)).replace("~/photos", str(photos))
        text = re.sub(r"outputs/<date>/<time>-<id>", str(current), text)
        args = tiny(shlex.split(text)[1:], tmp_path / f"cmd{i}")
        r = gan(args, tmp_path, env)
        if args[0] == "train" and "-m" not in args and not any(a.startswith(("resume=", "--")) for a in args):
            current = tmp_path / f"cmd{i}"
        assert r.returncode == 0, f"{doc.name}: `{cmd}` failed:\n{r.stderr[-2000:]}"
        assert "Traceback" not in r.stderr, cmd


def python_blocks(path: Path) -> list[str]:
    """The ```python blocks of a page (```py ones are illustrations that name objects the page does not build)."""
    blocks, current = [], None
    for line in path.read_text().splitlines():
        if current is None and line.strip() == "```python":
            current = []
        elif current is not None and line.startswith("```"):
            blocks.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


@pytest.mark.slow
@pytest.mark.parametrize("doc", [ROOT / "README.md", ROOT / "docs" / "guide" / "python.md"], ids=lambda p: p.name)
def test_the_python_examples_run_as_written(doc, tmp_path):
    """A page's python blocks run in order in one interpreter, as a reader pastes them into a notebook."""
    code = "\n".join(python_blocks(doc))
    assert "gancli" in code
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, f"{doc.name}: {r.stderr[-3000:]}"
    assert "Traceback" not in r.stderr


def test_the_readme_shows_the_two_fresh_machine_commands():
    readme = (ROOT / "README.md").read_text()
    assert "pip install -e . && gan train\n" in readme
    assert 'pip install -e ".[test]" && python -m pytest -q\n' in readme
    assert len(readme.splitlines()) <= 220


LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")


@pytest.mark.parametrize(
    "doc", [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))], ids=lambda p: str(p.relative_to(ROOT))
)
def test_every_relative_link_resolves(doc):
    for target, _ in LINK.findall(doc.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        assert (doc.parent / target).exists(), f"{doc.relative_to(ROOT)} links to missing {target}"


@pytest.mark.slow
def test_the_generated_reference_is_up_to_date():
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_reference.py"), "--check"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
