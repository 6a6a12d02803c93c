"""`gan translate`: a translation model's checkpoint applied to images from a file, a folder or an npz.

A folder in gives a folder out with the same file names (as .png); an npz in (`images`, (N, H, W, C) uint8,
as `gan sample format=npz` writes) gives an npz out. Everything is read and translated before anything is
written, so a bad input never leaves half an output.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from gancli.commands.sample import load_for_sampling
from gancli.core.capabilities import Translates
from gancli.core.device import select_device
from gancli.core.errors import GanError
from gancli.data.files import read_images
from gancli.viz import to_uint8_images

log = logging.getLogger("gancli")


def translate_from_config(cfg) -> Path:
    device = select_device(cfg.device)
    translator, spec, state = load_for_sampling(cfg.ckpt, device, cfg.ema)
    if not isinstance(translator, Translates):
        raise GanError(
            f"gan translate needs a translation model (pix2pix, pix2pixhd, cyclegan); {cfg.ckpt} was "
            f"trained as {state['config']['model']['name']}."
        )
    direction = translator.check_direction(cfg.direction)
    field = translator.input_field(direction)
    x, names, _ = read_images(Path(cfg.input).expanduser(), field.shape[0], field.shape[-1], "gan translate")
    out_images = to_uint8_images(translator.translate(x.float() / 127.5 - 1, direction, batch_size=int(cfg.batch_size)))
    out = Path(cfg.out).expanduser()
    if out.suffix.lower() == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out, images=out_images.numpy())
    else:
        from PIL import Image

        out.mkdir(parents=True, exist_ok=True)
        for name, img in zip(names, out_images.numpy()):
            Image.fromarray(img.squeeze(-1) if img.shape[-1] == 1 else img).save(out / f"{name}.png")
    log.info(
        "translated %d image(s) %s with step %d of %s into %s", len(names), direction, state["step"], cfg.ckpt, out
    )
    return out
