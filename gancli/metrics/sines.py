"""`sine_fit`: how much of the sines' parameter range a model draws (Esteban et al. 2017's sines).

MMD² says how far the samples are from the data as a whole; it does not say which sines are missing. This
fits A·sin(2πf·t/T + φ) to every sequence (every channel), by least squares over a grid of frequencies finer
than an FFT's integer bins at T = 30, and reports the Kolmogorov–Smirnov distance of the fitted frequencies
to U[freq] (`ks_freq`) and of the amplitudes to U[amplitude] (`ks_amp`), the dataset's ranges. A model that
draws only the slow half of the range has ks_freq ≈ 0.5; real held-out sines (the floor) ≈ 0.01.
"""

from __future__ import annotations

import numpy as np

from gancli.core.errors import GanError
from gancli.metrics.base import METRICS, Metric

FIT_STEP = 0.01  # the frequency grid's spacing, in cycles per sequence


def fit_sines(x: np.ndarray, freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x: (N, T) sequences. Per sequence, the (f, A) of the least-squares fit a·sin + b·cos, best over `freqs`."""
    seqs = np.asarray(x, dtype=np.float64)
    steps = seqs.shape[1]
    t = np.arange(steps)
    best_f, best_a, best_err = np.zeros(len(seqs)), np.zeros(len(seqs)), np.full(len(seqs), np.inf)
    for f in freqs:
        basis = np.stack([np.sin(2 * np.pi * f * t / steps), np.cos(2 * np.pi * f * t / steps)], 1)  # (T, 2)
        coef = np.linalg.pinv(basis) @ seqs.T  # (2, N)
        err = ((basis @ coef - seqs.T) ** 2).sum(0)
        better = err < best_err
        best_f[better], best_a[better], best_err[better] = f, np.hypot(*coef)[better], err[better]
    return best_f, best_a


def ks_uniform(values: np.ndarray, lo: float, hi: float) -> float:
    """sup |F_n(v) − F(v)| against U[lo, hi]."""
    v = np.sort(values)
    n = len(v)
    cdf = np.clip((v - lo) / (hi - lo), 0, 1)
    return float(max((np.arange(1, n + 1) / n - cdf).max(), (cdf - np.arange(n) / n).max()))


@METRICS.register("sine_fit")
class SineFit(Metric):
    kinds = ("sequence",)
    needs_features = False
    values = ("ks_freq", "ks_amp")
    protocol = (
        "a sine fitted to every sequence (least squares, frequency grid 0.01); KS distance of the fitted "
        "frequencies and amplitudes to the dataset's uniform ranges"
    )

    def check(self, ctx):
        super().check(ctx)
        name = None if ctx.real is None else ctx.real.cfg.get("name")
        if name != "sines":
            raise GanError(f"sine_fit measures models of the sines dataset (dataset=sines); this one is '{name}'.")

    def compute(self, ctx):
        cfg = ctx.real.cfg
        (f_lo, f_hi), (a_lo, a_hi) = cfg["freq"], cfg["amplitude"]
        x = (ctx.real.test.samples[: ctx.n] if ctx.is_floor else ctx.samples).numpy()
        seqs = x.transpose(0, 2, 1).reshape(-1, x.shape[1])  # every channel is a sine of its own
        margin = (f_hi - f_lo) / 8  # fits outside the range count against the model
        freqs = np.arange(max(f_lo - margin, FIT_STEP), f_hi + margin + FIT_STEP / 2, FIT_STEP)
        f, a = fit_sines(seqs, freqs)
        return {"ks_freq": ks_uniform(f, f_lo, f_hi), "ks_amp": ks_uniform(a, a_lo, a_hi)}
