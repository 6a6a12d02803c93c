"""`gan export`: a checkpoint's sampling network as one standalone file, TorchScript (`torch.jit.load`) or
ONNX (onnxruntime), that runs without gancli, with a free batch axis, and its input contract beside it
(`<out>.json`). What the network computes is the family's (`Algorithm.export`); this module traces it,
writes the file and checks the file against the family's module at three batch sizes before it is kept.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from gancli import __version__
from gancli.algorithms.base import Algorithm
from gancli.algorithms.export import EXAMPLE_BATCH, Export
from gancli.core.errors import GanError
from gancli.model import Model, load

log = logging.getLogger("gancli")
FORMATS = {"torchscript": ".pt", "onnx": ".onnx"}
RUNTIMES = {"torchscript": "torch.jit.load", "onnx": "onnxruntime.InferenceSession"}
COMMON_KEYS = ("ckpt", "format", "out", "ema")
CHECK_BATCHES = (EXAMPLE_BATCH, 1, 3)  # the traced batch and two others: the batch axis must be free
# The largest |file − gancli's module| accepted, in output units: a sanity check, ten times the tests'
# bound (a freshly started StyleGAN, whose AdaIN divides by near-flat maps, comes close to it), where a
# trace that fixed a batch-dependent value is off by far more. The contract records the difference found.
TOLERANCE = {"torchscript": 1e-4, "onnx": 1e-3}
OPSET = 17
OUTPUT = "output"


def export_from_config(cfg) -> Path:
    options = {k: v for k, v in cfg.items() if k not in COMMON_KEYS and v is not None}
    check_format(str(cfg.format))
    return export_model(load(cfg.ckpt, "cpu", bool(cfg.ema)), str(cfg.format), cfg.out, **options)


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise GanError(f"format='{fmt}' is not one of: {', '.join(FORMATS)}.")
    if fmt == "onnx":
        missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
        if missing:
            raise GanError(
                f"format=onnx needs {' and '.join(missing)}, which is not installed: pip install 'gancli[export]' "
                "(or format=torchscript, which needs only torch)."
            )


def export_model(model: Model, fmt: str = "torchscript", out: str | os.PathLike | None = None, **options) -> Path:
    """Write `model`'s sampling network as `fmt` to `out` (default model.pt / model.onnx) and its contract to
    `<out>.json`; options are the family's export options (direction=, level=, ...). The model is traced on
    the CPU."""
    check_format(fmt)
    algorithm, name = model.algorithm, model.name
    check_options(algorithm, options, name)
    exported = algorithm.export(options)
    if exported.stochastic and fmt == "onnx":
        raise GanError(
            f"format=onnx cannot carry {name}'s randomness of its own (its test-time dropout): onnxruntime "
            "removes dropout at inference. Use format=torchscript, which keeps it, or dropout=false "
            "(deterministic, as the authors' test.py --eval)."
        )
    if model.device.type != "cpu":
        raise GanError(f"export traces on the CPU; load the model with device='cpu' (it is on {model.device}).")
    out = Path(out or f"model{FORMATS[fmt]}").expanduser()
    worst = write(exported, fmt, out, name)
    contract = {
        "file": out.name,
        "format": fmt,
        "runtime": RUNTIMES[fmt],
        "model": name,
        "algorithm": model.config["model"]["algorithm"],
        "checkpoint": str(model.path),
        "step": model.step,
        "ema": model.ema,
        "options": dict(options),
        **exported.contract(),
        "batch": "free: axis 0 of the output and of every input but the 0-d ones",
        "checked": {
            "batches": list(CHECK_BATCHES),
            "max_abs_difference": worst,
            "tolerance": TOLERANCE[fmt],
            "against": "gancli's network in PyTorch, on the same inputs",
        },
        "gancli_version": __version__,
        "torch_version": torch.__version__,
        **({"opset": OPSET} if fmt == "onnx" else {}),
    }
    Path(f"{out}.json").write_text(json.dumps(contract, indent=2, ensure_ascii=False) + "\n")
    log.info("exported %s (step %d) as %s to %s, its contract to %s.json", name, model.step, fmt, out, out)
    return out


def check_options(algorithm: Algorithm, options: Mapping, model: str) -> None:
    supported = algorithm.export_options
    for key in options:
        if key not in supported:
            offer = f"it takes: {', '.join(f'{k}=' for k in supported)}" if supported else "it takes none"
            raise GanError(f"{key}= is not an export option of model '{model}' ({type(algorithm).__name__}); {offer}.")


def trace(exported: Export) -> torch.jit.ScriptModule:
    example = exported.inputs(EXAMPLE_BATCH, torch.Generator().manual_seed(0))
    with warnings.catch_warnings(), torch.no_grad():
        # torch.jit's deprecation notice, and tracer warnings: the file is checked at other batch sizes instead
        warnings.simplefilter("ignore")
        return torch.jit.trace(exported.module, example, check_trace=False)


def write(exported: Export, fmt: str, out: Path, model: str) -> float:
    """Trace, write `out` (through a temporary file: a failed check leaves nothing), check; the largest
    difference from the family's module."""
    traced = trace(exported)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        if fmt == "torchscript":
            traced.save(str(tmp))
        else:
            _onnx(traced, exported, tmp)
        worst = check(exported, _runner(fmt, tmp), fmt, model)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return worst


def _onnx(traced: torch.jit.ScriptModule, exported: Export, path: Path) -> None:
    example = exported.inputs(EXAMPLE_BATCH, torch.Generator().manual_seed(0))
    axes = {name: {0: "batch"} for name, t in zip(exported.about, example) if t.dim()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation notice
        torch.onnx.export(
            traced,
            example,
            str(path),
            dynamo=False,
            input_names=list(exported.about),
            output_names=[OUTPUT],
            dynamic_axes={**axes, OUTPUT: {0: "batch"}},
            opset_version=OPSET,
        )


def _runner(fmt: str, path: Path) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    """The written file, run the way a user without gancli runs it."""
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit's deprecation notice
            module = torch.jit.load(str(path))
        return lambda inputs: module(*inputs.values())
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda inputs: torch.from_numpy(session.run(None, {k: v.numpy() for k, v in inputs.items()})[0])


def check(exported: Export, run: Callable, fmt: str, model: str) -> float:
    """The file against the family's module on the same inputs at each of CHECK_BATCHES (a stochastic one
    with torch's random numbers from the same seed)."""
    worst = 0.0
    for n in CHECK_BATCHES:
        inputs = dict(zip(exported.about, exported.inputs(n, torch.Generator().manual_seed(n))))
        with torch.no_grad():
            torch.manual_seed(n)
            want = exported.module(*inputs.values())
            torch.manual_seed(n)
            got = run(inputs)
        if got.shape != want.shape:
            raise GanError(
                f"the exported {model} returns shape {tuple(got.shape)} at batch {n} where gancli's network returns "
                f"{tuple(want.shape)}: a bug in gancli's export of this family; please report it."
            )
        worst = max(worst, (got.float() - want.float()).abs().max().item())
    if worst > TOLERANCE[fmt]:
        raise GanError(
            f"the exported {model} differs from gancli's network by up to {worst:.3g} (tolerance {TOLERANCE[fmt]:g}) "
            "on the same inputs: a bug in gancli's export of this family; please report it. Nothing was written."
        )
    return worst
