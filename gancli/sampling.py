"""`gan sample`: rebuild the networks from a checkpoint alone and write grids, interpolations or bulk files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from gancli.algorithms import build_algorithm
from gancli.data.base import DataSpec
from gancli.errors import GanError
from gancli.training.checkpoint import load_checkpoint
from gancli.training.device import select_device
from gancli.training.precision import Precision
from gancli.viz import save_samples
from gancli.viz.render import to_uint8_images

log = logging.getLogger("gancli")
FORMATS = ("png", "npz", "png_dir", "npy")


def load_generator(ckpt_path: str, device: torch.device, use_ema: bool = True):
    """(algorithm in eval mode with the checkpoint's — EMA when present — weights, spec, checkpoint)."""
    state = load_checkpoint(ckpt_path)
    spec = DataSpec.from_plain(state["spec"])
    cfg = OmegaConf.create(state["config"])
    algorithm = build_algorithm(cfg, spec, device, Precision(None, device))
    algorithm.load_state_dict(state, with_optimizers=False, nets=algorithm.ema_nets)  # D is not needed to sample
    if use_ema and state.get("ema"):
        for k, sd in state["ema"].items():
            algorithm.nets[k].load_state_dict(sd)
    algorithm.train_mode(False)
    return algorithm, spec, state


def sample_from_config(cfg) -> Path:
    if cfg.format not in FORMATS:
        raise GanError(f"format='{cfg.format}' is not one of: {', '.join(FORMATS)}.")
    if cfg.n < 1 or cfg.batch_size < 1 or cfg.nrow < 1:
        raise GanError(f"n={cfg.n}, batch_size={cfg.batch_size}, nrow={cfg.nrow}: each must be at least 1.")
    device = select_device(cfg.device)
    algorithm, spec, state = load_generator(cfg.ckpt, device, cfg.ema)
    out = Path(cfg.out).expanduser()
    gen = torch.Generator().manual_seed(int(cfg.seed))

    wanted = cfg.get("class")
    if wanted is not None and (cfg.get("traverse") is not None or cfg.interpolate):
        raise GanError("class= picks the class of independent samples; it cannot be combined with interpolate=true "
                       "or traverse= (their grids choose the classes or codes themselves).")
    if cfg.get("traverse") is not None:
        if spec.kind != "image" or cfg.format != "png":
            raise GanError("traverse= draws a png grid of images; it needs an image model and format=png.")
        inputs, nrow = algorithm.traversal_inputs(str(cfg.traverse), cfg.nrow, gen)
        x = algorithm.generate(inputs)
        save_samples(x, spec, out, nrow=nrow)
    elif cfg.interpolate:
        if spec.kind != "image" or cfg.format != "png":
            raise GanError("interpolate=true draws a png grid of images; it needs an image model and format=png.")
        rows = max(1, cfg.n // cfg.nrow)
        x = algorithm.generate(algorithm.interpolation_inputs(rows, cfg.nrow, gen))
        save_samples(x, spec, out, nrow=cfg.nrow)
    else:
        n, nrow, labels = cfg.n, cfg.nrow, None
        if wanted is not None:
            classes = classes_or_fail(algorithm.sample_classes(), wanted)
            if str(wanted) == "all" and cfg.format == "png":   # the grid: one row of nrow per class
                n, labels = nrow * classes, torch.arange(classes).repeat_interleave(nrow)
            elif str(wanted) == "all":                         # bulk: classes evenly spread over n
                labels = torch.arange(n) % classes
            else:
                labels = torch.full((n,), class_index(wanted, classes, algorithm.class_names()), dtype=torch.long)
        # every input drawn up front: the samples do not depend on batch_size
        inputs = algorithm.sample_inputs(n, gen, labels)
        x = torch.cat([algorithm.generate({k: v[i:i + cfg.batch_size] for k, v in inputs.items()}).cpu()
                       for i in range(0, n, cfg.batch_size)])
        meta = {k: v.cpu() for k, v in inputs.items() if k != "z"}
        WRITERS[cfg.format](x, spec, out, cfg, meta, nrow)
    log.info("wrote %d %s sample(s) from step %d of %s to %s", len(x), spec.kind, state["step"], cfg.ckpt, out)
    return out


def classes_or_fail(classes: int, wanted) -> int:
    if not classes:
        raise GanError(f"class={wanted}: this model is not class-conditional (train cgan, cdcgan, acgan, "
                       "a model with model.condition set, or infogan's categorical code).")
    return classes


def class_index(wanted, classes: int, names: tuple[str, ...]) -> int:
    """class= accepts an index or, for models trained on named labels, a name ('star', 'Sneaker')."""
    names = list(names) if len(names) == classes else []
    if str(wanted) in names:
        return names.index(str(wanted))
    try:
        k = int(wanted)
    except (TypeError, ValueError):
        k = -1
    if not 0 <= k < classes:
        choices = f"0..{classes - 1}" + (f" or a name: {', '.join(names)}" if names else "")
        raise GanError(f"class={wanted} is not a class of this model; use all, {choices}.")
    return k


def _png(x, spec, out: Path, cfg, meta, nrow):
    save_samples(x, spec, out, nrow=nrow)


def _arrays(x: torch.Tensor, spec: DataSpec) -> dict[str, np.ndarray]:
    if spec.kind == "image":
        return {"images": to_uint8_images(x).numpy()}          # (n, H, W, C) uint8
    return {spec.kind: x.numpy().astype(np.float32)}           # e.g. points: (n, 2)


def _npz(x, spec, out: Path, cfg, meta, nrow):
    """Samples plus each sample's conditions (labels; InfoGAN's categorical and continuous codes)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **_arrays(x, spec), **{k: v.numpy() for k, v in meta.items()})


def _npy(x, spec, out: Path, cfg, meta, nrow):
    out.parent.mkdir(parents=True, exist_ok=True)
    (arr,) = _arrays(x, spec).values()
    np.save(out, arr)


def _png_dir(x, spec, out: Path, cfg, meta, nrow):
    if spec.kind != "image":
        raise GanError(f"format=png_dir writes one image per sample; this model makes {spec.kind}: use npy or npz.")
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(to_uint8_images(x).numpy()):
        Image.fromarray(img.squeeze(-1) if img.shape[-1] == 1 else img).save(out / f"{i:06d}.png")


WRITERS = {"png": _png, "npz": _npz, "npy": _npy, "png_dir": _png_dir}
