"""`gan encode`: a checkpoint's encoder applied to an image, a folder, an npz, or a split of its dataset.

The npz out holds `z` (N, d) in input order, every other code the family names (AAE's categorical `y` and
`cluster`), with `hidden=true` the encoder's last hidden layer `h` (N, features), `labels` when the input has
them and `names` for files. Everything is read and encoded before
anything is written, so a bad input never leaves half an output.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from gancli.core.errors import GanError
from gancli.model import Model, in_data_units, load
from gancli.viz import Panel

log = logging.getLogger("gancli")


def _inputs(cfg, model: Model):
    """(x in the data's units, labels or None, names or None)."""
    from gancli.data.base import split_reference
    from gancli.data.files import read_images

    if (cfg.input is None) == (cfg.split is None):
        raise GanError(
            "gan encode reads input=<image | folder | npz> or split=train | test (the checkpoint's "
            "dataset); give one of the two."
        )
    field = model.spec["x"]
    if cfg.split is not None:
        n = int(cfg.n) if cfg.n is not None else 10**9
        ref = split_reference(OmegaConf.create(model.config["dataset"]), n, str(cfg.split))
        return in_data_units(Panel(field.kind, ref["x"])), ref.get("y"), None
    if field.kind != "image":
        raise GanError(
            f"input={cfg.input}: this model encodes {field.describe()}; read its dataset with split=train "
            "or split=test."
        )
    images, names, labels = read_images(Path(cfg.input).expanduser(), field.shape[0], field.shape[-1], "gan encode")
    return images, labels, names


def encode_from_config(cfg) -> Path:
    model = load(cfg.ckpt, cfg.device, ema=True)
    model.check_encoder()
    out = Path(cfg.out).expanduser()
    if out.suffix.lower() != ".npz":
        raise GanError(f"out={out}: gan encode writes an .npz (z, labels, ...).")
    if cfg.plot and model.algorithm.latent_dim < 2:
        raise GanError("plot=true draws the first two coordinates of the codes, but they have one.")
    x, labels, names = _inputs(cfg, model)
    codes = model.encode(x, batch_size=int(cfg.batch_size), hidden=bool(cfg.get("hidden", False)))
    arrays = {k: v.numpy() for k, v in codes.items()}
    if labels is not None:
        arrays["labels"] = labels.numpy()
    if names is not None:
        arrays["names"] = np.array(names)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    if cfg.plot:
        from gancli.viz import save_panels

        scatter = model.algorithm.latent_scatter(model.model_input(x), labels)
        save_panels({"latent": scatter}, out.with_suffix(".png"), title=f"step {model.step}")
    log.info(
        "encoded %d input(s) with step %d of %s into %s (%s)",
        len(x),
        model.step,
        cfg.ckpt,
        out,
        ", ".join(f"{k}: {'×'.join(map(str, codes[k].shape))}" for k in ("z", "h") if k in codes),
    )
    return out
