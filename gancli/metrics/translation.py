"""Translation metrics: how close a paired model's outputs are to the targets of the test split — the mean
absolute error, PSNR and SSIM (torchmetrics' implementations; images in [0, 1]). The classifier score of
pix2pix's "FCN score" idea lives in scripts/bench_translation.py."""

from __future__ import annotations

import torch

from gancli.core.capabilities import Translates
from gancli.core.errors import GanError
from gancli.metrics.base import METRICS, Metric


def pair_scores(output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Outputs and targets in [−1, 1], (N, C, H, W)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    o, t = (output.float().clamp(-1, 1) + 1) / 2, (target.float().clamp(-1, 1) + 1) / 2
    return {
        "l1": (o - t).abs().mean().item(),
        "psnr": peak_signal_noise_ratio(o, t, data_range=1.0).item(),
        "ssim": structural_similarity_index_measure(o, t, data_range=1.0).item(),
    }


@METRICS.register("pairs")
class PairedFidelity(Metric):
    needs_features = False
    has_floor = False
    values = ("l1", "psnr", "ssim")
    protocol = "test-split inputs translated and compared with their targets: mean |output − target|, PSNR, SSIM"

    def check(self, ctx):
        algo = ctx.algorithm
        if not isinstance(algo, Translates) or not algo.paired:
            raise GanError(
                "pairs compares translations with their targets: it needs a paired translation model "
                "(pix2pix, pix2pixhd)."
            )

    def compute(self, ctx):
        panels = ctx.algorithm.sample(
            {"split": "test"}, ctx.n, 8, torch.Generator(), int(ctx.settings.batch_size), grid=False, nets=ctx.nets
        )
        return pair_scores(panels["output"].data, panels["target"].data)
