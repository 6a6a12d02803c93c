"""The style-based generators' `gan sample` modes (StyleGAN's figures):

- `seeds=0-63` (or `1,5,9`): one image per seed, z drawn from that seed alone, so an image is named by
  its seed whatever else is drawn;
- `trunc=0.7`: w pulled toward the running average w̄ by ψ (`trunc_cutoff=k`: the first k layers only);
- `style_mix=true`: rows from one set of seeds, columns from another; three panels take the column's
  styles at the coarse, middle or fine layers and the row's elsewhere;
- `noise_only=true`: one w, different noise inputs (the stochastic-variation figure), with the per-pixel
  standard deviation over them.

Sampling uses the generator's constant noise maps (as the reference's generate.py), except noise_only.
"""

from __future__ import annotations

from typing import Any

import torch

from gancli.algorithms.base import SampleOption
from gancli.algorithms.export import Export, data_units
from gancli.algorithms.gan_sampling import class_index, classes_or_fail
from gancli.core.errors import GanError
from gancli.viz.panel import Panel

OPTIONS = {
    "seeds": SampleOption(Any, "style generators: one image per seed, a range 0-63 or a list 1,5,9 (replaces n)"),
    "trunc": SampleOption(float, "style generators: truncation ψ toward the average w (1: none, 0: the average image)"),
    "trunc_cutoff": SampleOption(int, "style generators: truncate only the first k layers' w"),
    "style_mix": SampleOption(
        bool,
        "style generators: the style-mixing figure (rows × columns of seeds; coarse, middle and fine crossovers)",
        formats=("png", "npz"),
    ),
    "noise_only": SampleOption(
        bool, "style generators: one w with different noise inputs, and their per-pixel std", formats=("png", "npz")
    ),
    "class": SampleOption(Any, "conditional models: an index or class name, or all"),
}


def parse_seeds(value) -> list[int]:
    """0-63 → 0..63; "1,5,9" or [1, 5, 9] → those; 7 → [7]."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    seeds: list[int] = []
    try:
        for item in items:
            text = str(item).strip()
            if "-" in text[1:]:  # a range lo-hi
                lo, hi = (int(t) for t in text.split("-"))
                if hi < lo:
                    raise ValueError
                seeds.extend(range(lo, hi + 1))
            else:
                seeds.append(int(text))
    except ValueError:
        raise GanError(
            f"seeds={value}: give a seed (7), a range (0-63) or a list (1,5,9) of non-negative integers."
        ) from None
    if any(s < 0 for s in seeds) or not seeds:
        raise GanError(f"seeds={value}: seeds are non-negative integers.")
    return seeds


def seed_latents(seeds: list[int], z_dim: int) -> torch.Tensor:
    return torch.stack([torch.randn(z_dim, generator=torch.Generator().manual_seed(s)) for s in seeds])


@torch.no_grad()
def synthesize(algo, G, z, labels, psi, cutoff, noise_mode, generator, batch_size, ws=None) -> torch.Tensor:
    """Images of latents z (or given ws), batch by batch, on the CPU."""
    out = []
    n = len(z) if ws is None else len(ws)
    for i in range(0, n, batch_size):
        with algo.precision.autocast():
            if ws is None:
                lab = labels[i : i + batch_size].to(algo.device) if labels is not None else None
                w = G.mapping(z[i : i + batch_size].to(algo.device), lab, psi, cutoff)
            else:
                w = ws[i : i + batch_size].to(algo.device)
            out.append(G.synthesis(w, noise_mode, generator).float().cpu())
    return torch.cat(out)


def _labels(algo, options, n) -> torch.Tensor | None:
    wanted = options.get("class")
    if wanted is None:
        return torch.arange(n) % algo.num_classes if algo.num_classes else None
    classes = classes_or_fail(algo.num_classes, wanted)
    if str(wanted) == "all":
        return torch.arange(n) % classes
    return torch.full((n,), class_index(wanted, classes, algo.class_names()), dtype=torch.long)


def layer_ranges(num_ws: int) -> dict[str, range]:
    """Coarse, middle and fine thirds of the synthesis layers (at 1024 px the paper's 4–8, 16–32, 64–1024)."""
    a, b = max(1, round(num_ws / 3)), max(2, round(2 * num_ws / 3))
    return {"coarse": range(0, a), "middle": range(a, b), "fine": range(b, num_ws)}


def sample(algo, G, options, n, nrow, generator, batch_size, grid):
    psi = float(options.get("trunc", 1.0) if options.get("trunc") is not None else 1.0)
    cutoff = options.get("trunc_cutoff")
    cutoff = int(cutoff) if cutoff is not None else None
    if options.get("seeds") is not None:
        seeds = parse_seeds(options["seeds"])
    else:
        seeds = None
    if options.get("style_mix"):
        rows, cols = (
            (seeds[: len(seeds) // 2], seeds[len(seeds) // 2 :])
            if seeds and len(seeds) > 1
            else (list(range(nrow)), list(range(nrow, 2 * nrow)))
        )
        return style_mix(algo, G, rows, cols, psi, cutoff, batch_size)
    if options.get("noise_only"):
        z = seed_latents(seeds[:1] if seeds else [0], algo.z_dim).repeat(n, 1)
        labels = _labels(algo, options, 1)
        labels = labels.repeat(n) if labels is not None else None
        with torch.no_grad():
            ws = G.mapping(z.to(algo.device), labels.to(algo.device) if labels is not None else None, psi, cutoff)
        x = synthesize(algo, G, z, labels, psi, cutoff, "random", generator, batch_size, ws=ws)
        spread = x.std(0, keepdim=True).mean(1, keepdim=True)
        spread = spread / spread.max().clamp_min(1e-8) * 2 - 1
        return {"samples": Panel("image", x, nrow), "std": Panel("image", spread, 1)}
    z = seed_latents(seeds, algo.z_dim) if seeds else torch.randn(n, algo.z_dim, generator=generator)
    labels = _labels(algo, options, len(z))
    x = synthesize(algo, G, z, labels, psi, cutoff, "const", None, batch_size)
    meta = (
        {"z": z}
        | ({"labels": labels} if labels is not None else {})
        | ({"seeds": torch.tensor(seeds)} if seeds else {})
    )
    return {"samples": Panel("image", x, nrow, meta)}


def style_mix(algo, G, rows: list[int], cols: list[int], psi, cutoff, batch_size) -> dict[str, Panel]:
    """Rows' styles everywhere but the panel's layer range, where the column's are used."""
    labels = _labels(algo, {}, 1)
    zr, zc = seed_latents(rows, algo.z_dim), seed_latents(cols, algo.z_dim)
    dev = algo.device
    with torch.no_grad():
        lab = (lambda k: labels.repeat(k).to(dev)) if labels is not None else (lambda k: None)
        wr, wc = G.mapping(zr.to(dev), lab(len(rows)), psi, cutoff), G.mapping(zc.to(dev), lab(len(cols)), psi, cutoff)
    panels = {
        "rows": Panel("image", synthesize(algo, G, None, None, 1, None, "const", None, batch_size, ws=wr), 1),
        "columns": Panel(
            "image", synthesize(algo, G, None, None, 1, None, "const", None, batch_size, ws=wc), len(cols)
        ),
    }
    for name, layers in layer_ranges(G.num_ws).items():
        ws = wr.repeat_interleave(len(cols), 0).clone()
        ws[:, list(layers)] = wc.repeat(len(rows), 1, 1)[:, list(layers)]
        panels[name] = Panel(
            "image", synthesize(algo, G, None, None, 1, None, "const", None, batch_size, ws=ws), len(cols)
        )
    return panels


EXPORT_OPTIONS = {
    "trunc_cutoff": SampleOption(
        int, "style generators: truncate only the first k layers' w (ψ is an input of the file)"
    )
}


def truncated(ws: torch.Tensor, w_avg: torch.Tensor, psi: torch.Tensor, cutoff: int | None) -> torch.Tensor:
    """`truncate` with ψ a tensor (an input of an exported file) and no in-place write."""
    n = ws.shape[1] if cutoff is None else min(int(cutoff), ws.shape[1])
    head = torch.lerp(w_avg.to(ws.dtype), ws[:, :n], psi.to(ws.dtype))
    return head if n == ws.shape[1] else torch.cat([head, ws[:, n:]], 1)


def export(algo, synthesis, options, **details) -> Export:
    """z (and labels) → w, truncated toward w̄ by the input ψ, → `synthesis(G, ws)` with the constant noise
    maps: what `gan sample` draws (trunc= and trunc_cutoff= there are ψ and trunc_cutoff= here)."""
    cutoff = options.get("trunc_cutoff")

    def run(nets, x):
        G = nets["G"]
        ws = truncated(G.mapping(x["z"], x.get("labels")), G.mapping.w_avg, x["psi"], cutoff)
        return data_units(synthesis(G, ws), algo.field)

    def draw(n, gen):
        inputs = {"z": torch.randn(n, algo.z_dim, generator=gen)}
        if algo.num_classes:
            inputs["labels"] = torch.randint(0, algo.num_classes, (n,), generator=gen)
        inputs["psi"] = 0.5 + 0.5 * torch.rand((), generator=gen)
        return inputs

    about = {"z": "noise, N(0, I)"}
    if algo.num_classes:
        about["labels"] = f"class index, 0 to {algo.num_classes - 1}"
    about["psi"] = "truncation psi toward the average w, one value (0-d) for the batch: 1 = none (gan sample's default)"
    return Export.of(
        {"G": algo.nets["G"]},
        run,
        about,
        draw=draw,
        output=algo.field,
        classes=algo.num_classes,
        class_names=algo.class_names(),
        details={"noise_maps": "const", "trunc_cutoff": cutoff, **details},
    )
