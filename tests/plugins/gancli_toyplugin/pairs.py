"""A dataset from outside gancli with fields of its own names: `a`, points on a ring, and `b`, each
point turned a quarter (paired: one order for both)."""

import math

import torch

from gancli.data.base import DATASETS, DataSpec, Field, in_memory_source


@DATASETS.register("toy_pairs")
def toy_pairs(n: int = 256, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    angle = torch.rand(n, generator=g) * 2 * math.pi
    a = torch.stack([angle.cos(), angle.sin()], 1)
    b = torch.stack([-a[:, 1], a[:, 0]], 1)
    spec = DataSpec({"a": Field("points", (2,)), "b": Field("points", (2,))})
    return in_memory_source(spec, {"a": a, "b": b}, f"toy_pairs: {n} pairs of points")
