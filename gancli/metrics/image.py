"""Image metrics on extracted features. The maths is torch-fidelity's (FID, KID with StyleGAN2-ADA's
100 subsets of 1000, Inception Score, improved precision / recall with k = 3, all as its reference
implementations compute them) and prdc's (density / coverage, by their authors); gancli chooses the
features, the sample counts and the reference, and caches the reference's features."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import torch

from gancli.core.errors import GanError
from gancli.metrics.base import METRICS, Metric


def _subset(x: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """n rows of x, a fixed random choice (all when n ≥ len(x))."""
    if n >= len(x):
        return x
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]]


def fid_from_features(a: torch.Tensor, b: torch.Tensor) -> float:
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    return fid_statistics_to_metric(fid_features_to_statistics(a), fid_features_to_statistics(b), verbose=False)[
        "frechet_inception_distance"
    ]


def kid_from_features(
    a: torch.Tensor, b: torch.Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 2020
) -> tuple[float, float]:
    from torch_fidelity.metric_kid import kid_features_to_metric

    out = kid_features_to_metric(a, b, kid_subsets=subsets, kid_subset_size=subset_size, rng_seed=seed, verbose=False)
    return out["kernel_inception_distance_mean"], out["kernel_inception_distance_std"]


def is_from_logits(logits: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    from torch_fidelity.metric_isc import isc_features_to_metric

    out = isc_features_to_metric(logits, splits=splits)
    return out["inception_score_mean"], out["inception_score_std"]


def precision_recall(fake: torch.Tensor, real: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Kynkäänniemi et al. 2019: precision = fakes inside some real sample's k-NN ball; recall the reverse."""
    from torch_fidelity.metric_prc import prc_features_to_metric

    out = prc_features_to_metric(
        fake, real, prc_neighborhood=k, prc_batch_size=10000, save_cpu_ram=False, verbose=False
    )
    return out["precision"], out["recall"]


def density_coverage(fake: torch.Tensor, real: torch.Tensor, k: int = 5) -> tuple[float, float]:
    """Naeem et al. 2020 (prdc): density counts how many real k-NN balls hold each fake; coverage is the
    share of real balls that hold some fake."""
    from prdc import compute_prdc

    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the sample counts
        out = compute_prdc(real.numpy().astype(np.float32), fake.numpy().astype(np.float32), k)
    return float(out["density"]), float(out["coverage"])


@METRICS.register("fid")
class FID(Metric):
    values = ("fid",)
    protocol = "Fréchet distance of the feature Gaussians, n samples against the reference"

    def check(self, ctx):
        super().check(ctx)
        if ctx.n < 2:
            raise GanError(f"fid needs at least 2 samples (n={ctx.n}); the standard is 10,000 or 50,000.")

    def compute(self, ctx):
        return {"fid": fid_from_features(ctx.features.features, ctx.reference.features)}


@METRICS.register("kid")
class KID(Metric):
    values = ("kid", "kid_std")
    protocol = "unbiased MMD² with a cubic polynomial kernel, mean over subsets (StyleGAN2-ADA: 100 × 1000)"

    def check(self, ctx):
        super().check(ctx)
        size = ctx.settings.kid_subset_size
        if ctx.n < size or ctx.reference_n < size:
            raise GanError(
                f"kid draws {ctx.settings.kid_subsets} subsets of eval.kid_subset_size={size} samples, but "
                f"there are n={ctx.n} samples and {ctx.reference_n} reference images: raise n (and "
                f"eval.reference_n) to at least {size}, or lower eval.kid_subset_size."
            )

    def compute(self, ctx):
        s = ctx.settings
        mean, std = kid_from_features(ctx.features.features, ctx.reference.features, s.kid_subsets, s.kid_subset_size)
        return {"kid": mean, "kid_std": std}


@METRICS.register("is")
class InceptionScore(Metric):
    values = ("is", "is_std")
    needs_logits = True
    protocol = "exp E[KL(p(y|x) ‖ p(y))] over 10 splits of the extractor's class predictions"

    def check(self, ctx):
        super().check(ctx)
        if ctx.n < 10:
            raise GanError(f"is splits the samples in 10; n={ctx.n} is too few.")
        if not ctx.extractor_has_logits:
            raise GanError(
                "is needs class predictions, which this feature extractor does not give (the TorchScript "
                "Inception has features only): fetch torch-fidelity's weights or use eval.features=classifier."
            )

    def compute(self, ctx):
        mean, std = is_from_logits(ctx.features.logits)
        return {"is": mean, "is_std": std}


@METRICS.register("pr")
class PrecisionRecall(Metric):
    values = ("precision", "recall")
    protocol = "improved precision / recall, k = 3, n samples against n reference images"

    def compute(self, ctx):
        p, r = precision_recall(ctx.features.features, _subset(ctx.reference.features, ctx.n), k=3)
        return {"precision": p, "recall": r}


@METRICS.register("dc")
class DensityCoverage(Metric):
    values = ("density", "coverage")
    protocol = "density / coverage, k = 5, at most 5000 samples against as many reference images"
    limit = 5000

    def compute(self, ctx):
        n = min(ctx.n, self.limit)
        d, c = density_coverage(_subset(ctx.features.features, n, 1), _subset(ctx.reference.features, n), k=5)
        return {"density": d, "coverage": c}
