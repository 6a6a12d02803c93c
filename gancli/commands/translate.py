"""`gan translate`: a translation model's checkpoint applied to images from a file, a folder or an npz.

A folder in gives a folder out with the same file names (as .png); an npz in (`images`, (N, H, W, C) uint8,
as `gan sample format=npz` writes) gives an npz out. Everything is read and translated before anything is
written, so a bad input never leaves half an output.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from gancli.data.files import read_images
from gancli.model import load
from gancli.viz import to_uint8_images

log = logging.getLogger("gancli")


def translate_from_config(cfg) -> Path:
    model = load(cfg.ckpt, cfg.device, cfg.ema)
    translator = model.check_translator()
    direction = translator.check_direction(cfg.direction)
    field = translator.input_field(direction)
    x, names, _ = read_images(Path(cfg.input).expanduser(), field.shape[0], field.shape[-1], "gan translate")
    out_images = to_uint8_images(model.translate(x, direction, batch_size=int(cfg.batch_size)), low=0.0)
    out = Path(cfg.out).expanduser()
    if out.suffix.lower() == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out, images=out_images.numpy())
    else:
        from PIL import Image

        out.mkdir(parents=True, exist_ok=True)
        for name, img in zip(names, out_images.numpy()):
            Image.fromarray(img.squeeze(-1) if img.shape[-1] == 1 else img).save(out / f"{name}.png")
    log.info("translated %d image(s) %s with step %d of %s into %s", len(names), direction, model.step, cfg.ckpt, out)
    return out
