"""Mode coverage on 2-D mixtures (the VEEGAN / PacGAN protocol): modes captured (a mode counts when at
least one high-quality sample is nearest to it), the high-quality share (within 3σ of the nearest mode
centre) and the reverse KL between the generated mode histogram and the uniform one."""

from __future__ import annotations

import math

import torch

from gancli.core.errors import GanError
from gancli.metrics.base import METRICS, Metric


def mode_stats(points: torch.Tensor, centres: torch.Tensor, std: float) -> dict[str, float]:
    d = torch.cdist(points.double(), centres.double())
    dist, nearest = d.min(dim=1)
    hq = dist <= 3 * std
    q = torch.bincount(nearest, minlength=len(centres)).double() / len(points)
    p = 1.0 / len(centres)
    return {
        "modes": float(torch.unique(nearest[hq]).numel()),
        "hq": hq.double().mean().item(),
        "rev_kl": sum(qi * math.log(qi / p) for qi in q.tolist() if qi > 0),
    }


@METRICS.register("modes")
class ModeCoverage(Metric):
    kinds = ("points",)
    needs_features = False
    values = ("modes", "hq", "rev_kl")
    protocol = "modes captured (a high-quality sample nearest), share within 3σ of a mode, reverse KL to uniform"

    def check(self, ctx):
        super().check(ctx)
        if not ctx.field.extras.get("centres"):
            raise GanError("modes needs a mixture with known centres (ring8, grid25); this dataset has none.")

    def compute(self, ctx):
        extras = ctx.field.extras
        return mode_stats(ctx.samples.float(), torch.tensor(extras["centres"]), float(extras["std"]))
