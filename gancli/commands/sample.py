"""`gan sample`: rebuild a family from its checkpoint alone, ask it for panels, write them.

What can be asked is the family's: each algorithm declares its `sample_options` (class=, interpolate=,
traverse=, ...), and an option it does not declare is refused with the list of those it does. The
writers are generic: a png draws the panels; npz holds each panel's samples (and their conditions);
npy one panel's samples; png_dir one file per image.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from gancli.core.errors import GanError
from gancli.model import load
from gancli.viz import Panel, save_panels, to_uint8_images

log = logging.getLogger("gancli")
FORMATS = ("png", "npz", "png_dir", "npy", "csv")
COMMON_KEYS = ("ckpt", "n", "seed", "nrow", "out", "format", "batch_size", "device", "ema")
ARRAY_KEYS = {"image": "images", "sequence": "sequences"}  # npz key of a lone panel's samples, by kind


def requested_options(cfg: Mapping) -> dict:
    """The family options: every key beyond the common ones (the model drops those left unset, null or false)."""
    return {k: v for k, v in cfg.items() if k not in COMMON_KEYS}


def sample_from_config(cfg) -> Path:
    if cfg.format not in FORMATS:
        raise GanError(f"format='{cfg.format}' is not one of: {', '.join(FORMATS)}.")
    model = load(cfg.ckpt, cfg.device, cfg.ema)
    out = Path(cfg.out).expanduser()
    panels = model.sample_panels(
        int(cfg.n),
        int(cfg.seed),
        int(cfg.nrow),
        int(cfg.batch_size),
        grid=cfg.format == "png",
        fmt=cfg.format,
        **requested_options(cfg),
    )
    WRITERS[cfg.format](panels, out)
    count = ", ".join(f"{len(p.data)} {p.kind}" for p in panels.values())
    log.info("wrote %s sample(s) from step %d of %s to %s", count, model.step, cfg.ckpt, out)
    return out


def _array(panel: Panel) -> np.ndarray:
    if panel.kind == "image":
        return to_uint8_images(panel.data.float().cpu()).numpy()  # (n, H, W, C) uint8
    return panel.data.float().cpu().numpy().astype(np.float32)  # e.g. points: (n, 2)


def _arrays(panels: Mapping[str, Panel]) -> dict[str, np.ndarray]:
    """A lone panel: its samples under their kind's name ("images", "points") and its conditions as they
    are; several: each under its panel's name, conditions as <panel>_<key>."""
    if len(panels) == 1:
        (p,) = panels.values()
        return {ARRAY_KEYS.get(p.kind, p.kind): _array(p), **{k: v.cpu().numpy() for k, v in p.meta.items()}}
    out = {}
    for name, p in panels.items():
        out[name] = _array(p)
        out.update({f"{name}_{k}": v.cpu().numpy() for k, v in p.meta.items()})
    return out


def _png(panels, out: Path):
    save_panels(panels, out)


def _npz(panels, out: Path):
    """Samples plus each sample's conditions (labels; InfoGAN's categorical and continuous codes)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **_arrays(panels))


def _npy(panels, out: Path):
    if len(panels) != 1:
        raise GanError(
            f"format=npy holds one array, but this mode writes {len(panels)} panels "
            f"({', '.join(panels)}): use format=npz."
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, _array(next(iter(panels.values()))))


def _png_dir(panels, out: Path):
    """One PNG per sample: in `out` for a lone panel, in out/<panel name>/ for several."""
    from PIL import Image

    for p in panels.values():
        if p.kind != "image":
            raise GanError(f"format=png_dir writes one image per sample; this model makes {p.kind}: use npy or npz.")
    for name, p in panels.items():
        folder = out if len(panels) == 1 else out / name
        folder.mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(_array(p)):
            Image.fromarray(img.squeeze(-1) if img.shape[-1] == 1 else img).save(folder / f"{i:06d}.png")


def _csv(panels, out: Path):
    """Sequences as a table: one row per sample and step (sample, step, the channels, its conditions)."""
    if len(panels) != 1:
        raise GanError(f"format=csv holds one table; this mode writes {len(panels)} panels: use format=npz.")
    (p,) = panels.values()
    if p.kind != "sequence":
        raise GanError(f"format=csv writes sequences; this model makes {p.kind}: use npz or npy.")
    x = p.data.float().cpu().numpy()
    n, steps, channels = x.shape
    conds = {k: v.cpu().numpy() for k, v in p.meta.items() if v.dim() == 1}
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as f:
        f.write(",".join(["sample", "step", *(f"ch{c}" for c in range(channels)), *conds]) + "\n")
        for i in range(n):
            tail = [str(v[i]) for v in conds.values()]
            for t in range(steps):
                f.write(",".join([str(i), str(t), *(f"{x[i, t, c]:.6g}" for c in range(channels)), *tail]) + "\n")


WRITERS = {"png": _png, "npz": _npz, "npy": _npy, "png_dir": _png_dir, "csv": _csv}
