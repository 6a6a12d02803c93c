"""`gan eval`: score a checkpoint, or a set of samples from anywhere (another tool's npz, a folder of PNGs),
with gancli.metrics under one protocol; print a table and write it as JSON."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from gancli.core.device import select_device
from gancli.core.errors import GanError
from gancli.data.base import Field
from gancli.data.files import IMAGE_EXTS, decode_image
from gancli.metrics import EvalContext, Report, evaluate, resolve
from gancli.metrics.reference import RealData, plain
from gancli.metrics.suite import metric_names, model_context
from gancli.model import load

log = logging.getLogger("gancli")


def load_samples(path: Path, like: torch.Tensor) -> torch.Tensor:
    """Samples from a file or folder, in the layout of the reference samples `like`: uint8 (N, C, H, W)
    images, or float points. npz: the array `images` ((N, H, W, C) uint8, as `gan sample format=npz` writes)
    or `points`; npy: one such array; a folder: its image files, in name order."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
        if not files:
            raise GanError(f"samples={path} holds no images ({', '.join(sorted(IMAGE_EXTS))}).")
        mode = "L" if like.shape[1] == 1 else "RGB"
        return torch.stack([decode_image(p, like.shape[-1], mode=mode) for p in files])
    if not path.is_file():
        raise GanError(f"samples={path} does not exist (an npz, an npy, or a folder of images).")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise GanError(f"samples={path} is not a numpy file: {exc}.") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        key = next((k for k in ("images", "points") if k in data.files), None)
        if key is None:
            raise GanError(
                f"samples={path} holds {', '.join(data.files)}; gan eval reads `images` (N, H, W, C uint8) "
                "or `points` (N, 2)."
            )
        data = data[key]
    arr = np.asarray(data)
    if like.dtype == torch.uint8:
        want = (like.shape[2], like.shape[3], like.shape[1])
        if arr.ndim != 4 or tuple(arr.shape[1:]) != want or arr.dtype != np.uint8:
            raise GanError(
                f"samples={path} holds an array of shape {arr.shape} and type {arr.dtype}; the reference "
                f"images are (N, {want[0]}, {want[1]}, {want[2]}) uint8 (0..255), as gan sample format=npz "
                "writes them."
            )
        return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()
    if arr.ndim != 2 or arr.shape[1] != like.shape[1] or not np.isfinite(arr).all():
        raise GanError(
            f"samples={path} holds an array of shape {arr.shape}; the reference points are "
            f"(N, {like.shape[1]}) finite floats."
        )
    return torch.from_numpy(arr.astype(np.float32))


def default_out(cfg) -> Path:
    if cfg.out:
        return Path(cfg.out).expanduser()
    src = Path(cfg.ckpt or cfg.samples).expanduser()
    if src.is_dir() and cfg.ckpt:
        src = src / "checkpoints" / "last.pt"
    return (
        src.with_name(src.name.split(".")[0] + ".eval.json") if src.is_file() else src.parent / f"{src.name}.eval.json"
    )


def eval_from_config(cfg, show: bool = True) -> Report:
    if (cfg.ckpt is None) == (cfg.samples is None):
        raise GanError(
            "gan eval scores either a checkpoint (ckpt=<run>/checkpoints/last.pt) or a set of samples "
            "(samples=<npz | npy | folder> dataset=<the data they imitate>): give one of them."
        )
    device = select_device(cfg.device)
    if cfg.ckpt is not None:
        model = load(cfg.ckpt, device, cfg.ema)  # every network: a metric may read D (InfoGAN's Q lives on it)
        dataset_cfg = plain(cfg.dataset) if cfg.dataset is not None else model.config["dataset"]
        ctx = model_context(model.algorithm, dataset_cfg, cfg, device)
        source = f"{cfg.ckpt} (step {model.step}, model {model.name})"
    else:
        if cfg.dataset is None:
            raise GanError(
                "samples= needs dataset=<the data the samples imitate> (e.g. dataset=fashion_mnist): its "
                "training images are the reference."
            )
        real = RealData(cfg.dataset, int(cfg.reference_n))
        samples = load_samples(Path(cfg.samples).expanduser(), real.train.samples)
        kind = "image" if samples.dtype == torch.uint8 else "points"
        field_ = Field(kind, tuple(samples.shape[1:]), extras=dict(real.train.field.extras))
        ctx = EvalContext(resolve(metric_names(cfg.metrics, kind)), cfg, field_, real, device, samples=samples)
        source = f"{cfg.samples} ({len(samples)} samples)"
    report = evaluate(ctx, with_floor=bool(cfg.floor))
    report.protocol["scored"] = source
    out = default_out(cfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report.to_plain(), indent=2))
    if show:
        print_report(report, out)
    return report


def print_report(report: Report, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"gan eval: {report.protocol.get('scored', '')}", title_justify="left")
    for col in ("value", "result", "floor (real test data)", "better"):
        table.add_column(col)
    for row in report.rows():
        table.add_row(*row)
    Console().print(table)
    for key in ("n", "features", "reference", "floor"):
        if key in report.protocol:
            Console().print(f"  {key}: {report.protocol[key]}", highlight=False)
    Console().print(f"  written to {out}", highlight=False)
