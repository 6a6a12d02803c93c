"""`gan translate`: a translation model's checkpoint applied to images from a file, a folder or an npz.

A folder in gives a folder out with the same file names (as .png); an npz in (`images`, (N, H, W, C) uint8,
as `gan sample format=npz` writes) gives an npz out. Everything is read and translated before anything is
written, so a bad input never leaves half an output.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from gancli.algorithms.translation import Translator
from gancli.data.files import IMAGE_EXTS, decode_image
from gancli.errors import GanError
from gancli.sampling import load_for_sampling
from gancli.training.device import select_device
from gancli.viz import to_uint8_images

log = logging.getLogger("gancli")


def _read(path: Path, channels: int, resolution: int) -> tuple[torch.Tensor, list[str]]:
    """uint8 (N, C, R, R) and a name per image."""
    mode = "L" if channels == 1 else "RGB"
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
        if not files:
            raise GanError(f"input={path} holds no images ({', '.join(sorted(IMAGE_EXTS))}).")
        return torch.stack([decode_image(p, resolution, mode=mode) for p in files]), [p.stem for p in files]
    if path.suffix.lower() in IMAGE_EXTS:
        return decode_image(path, resolution, mode=mode).unsqueeze(0), [path.stem]
    if path.suffix.lower() == ".npz":
        data = np.load(path, allow_pickle=False)
        if "images" not in data.files:
            raise GanError(f"input={path} holds {', '.join(data.files)}; gan translate reads `images` (N, H, W, C).")
        arr = data["images"]
        if arr.ndim != 4 or arr.dtype != np.uint8 or arr.shape[-1] != channels:
            raise GanError(f"input={path}: images of shape {arr.shape} and type {arr.dtype}; this model translates "
                           f"(N, H, W, {channels}) uint8 images (its input has {channels} channel(s)).")
        x = torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()
        if x.shape[-1] != resolution or x.shape[-2] != resolution:
            log.warning("input images are %dx%d; resized to the model's %d px", x.shape[-1], x.shape[-2], resolution)
            x = torch.nn.functional.interpolate(x.float(), size=(resolution, resolution), mode="bilinear",
                                                antialias=True).round().clamp(0, 255).to(torch.uint8)
        return x, [f"{i:06d}" for i in range(len(x))]
    if not path.exists():
        raise GanError(f"input={path} does not exist (an image, a folder of images, or an npz).")
    raise GanError(f"input={path}: gan translate reads an image file, a folder of images or an npz.")


def translate_from_config(cfg) -> Path:
    device = select_device(cfg.device)
    translator, spec, state = load_for_sampling(cfg.ckpt, device, cfg.ema)
    if not isinstance(translator, Translator):
        raise GanError(f"gan translate needs a translation model (pix2pix, pix2pixhd, cyclegan); {cfg.ckpt} was "
                       f"trained as {state['config']['model']['name']}.")
    direction = translator.check_direction(cfg.direction)
    field = translator.input_field(direction)
    x, names = _read(Path(cfg.input).expanduser(), field.shape[0], field.shape[-1])
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
    log.info("translated %d image(s) %s with step %d of %s into %s", len(names), direction, state["step"], cfg.ckpt, out)
    return out
