"""The GAN family's `gan sample` modes: independent samples (optionally of chosen classes) and latent
interpolations; InfoGAN adds its code traversal. Each mode returns the panel it draws."""

from __future__ import annotations

from typing import Any

import torch

from gancli.algorithms.base import SampleOption, generate_in_batches
from gancli.core.errors import GanError

OPTIONS = {
    "class": SampleOption(
        Any,
        "conditional models: an index or class name (class=3, class=star), or all "
        "(png: one row of nrow per class; bulk: classes spread evenly over n)",
    ),
    "interpolate": SampleOption(
        bool, "true: each row walks between two latents (slerp under N(0, I))", formats=("png",)
    ),
}


def sample(gan, options: dict, n: int, nrow: int, generator: torch.Generator, batch_size: int, grid: bool, nets=None):
    wanted = options.get("class")
    grids = [k for k in ("interpolate", "traverse") if options.get(k)]
    if wanted is not None and grids:
        raise GanError(
            "class= picks the class of independent samples; it cannot be combined with interpolate=true "
            "or traverse= (their grids choose the classes or codes themselves)."
        )
    if options.get("traverse") is not None:
        inputs, nrow = gan.traversal_inputs(str(options["traverse"]), nrow, generator)
        return {"samples": gan.panel(gan.generate(inputs, nets), nrow)}
    if options.get("interpolate"):
        inputs = gan.interpolation_inputs(max(1, n // nrow), nrow, generator)
        return {"samples": gan.panel(gan.generate(inputs, nets), nrow)}
    labels = None
    if wanted is not None:
        classes = classes_or_fail(gan.sample_classes(), wanted)
        if str(wanted) == "all" and grid:  # the grid: one row of nrow per class
            n, labels = nrow * classes, torch.arange(classes).repeat_interleave(nrow)
        elif str(wanted) == "all":  # bulk: classes evenly spread over n
            labels = torch.arange(n) % classes
        else:
            labels = torch.full((n,), class_index(wanted, classes, gan.class_names()), dtype=torch.long)
    inputs = gan.sample_inputs(n, generator, labels)  # every input drawn up front: independent of batch_size
    x = generate_in_batches(lambda b: gan.generate(b, nets), inputs, batch_size)
    return {"samples": gan.panel(x, nrow, {k: v.cpu() for k, v in inputs.items() if k != "z"})}


def classes_or_fail(classes: int, wanted) -> int:
    if not classes:
        raise GanError(
            f"class={wanted}: this model is not class-conditional (train cgan, cdcgan, acgan, "
            "a model with model.condition set, or infogan's categorical code)."
        )
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
