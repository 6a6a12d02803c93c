"""Sequence metrics, in the data's own units:

- `mmd`: MMD² between generated and held-out real sequences (the test part), RBF kernel on whole
  sequences, bandwidth by the median heuristic, unbiased estimator. Its floor: the training part
  against the same held-out sequences.
- `mmd_vali`: `mmd` against the validation part (a procedural set's third draw), to choose a checkpoint on.
- `mmd_tuned`: MMD² as the RGAN authors' code measures it (ratschlab/RGAN experiment.py with mmd.py): a sum
  of two RBF kernels whose bandwidths start at h^−1 and h^3 (h: the median pairwise distance of the real
  sequences) and are tuned by RMSProp (TF's: lr 0.05, decay 0.9, accumulator from 1) to maximise the
  t-statistic MMD²/σ̂ (Sutherland et al. 2017's variance estimate) on a fifth of the samples, for at most 2000
  steps or until it changes by ≤ 0.001; MMD² is then estimated on the other four fifths, as their code does
  it: the unbiased estimate plus the kernel's diagonal (+2·2/(m−1), ≈ 0.001 at their m = 3988). Their
  objective (the biased MMD² over σ̂ floored at 1e-4) tends to drive one bandwidth towards 0, where that
  kernel is ≈ the identity: a biased MMD² of 2/m with a variance estimate near 0 is the largest ratio. The
  value then comes from the other kernel plus the diagonal term; `mmd` (median heuristic) stays the main one.
- `tstr`: train on synthetic, test on real (Esteban et al.), as their code runs it (eval.TSTR_mnist): a
  random forest of 500 trees fitted to as many synthetic sequences as there are real training sequences,
  drawn with the training sequences' classes, and scored on the real test part; beside it TRTS (a forest
  fitted to the real training part, scored on the synthetic ones) and TRTR (real on real, the ceiling).
- `tstr_vali`: the same forest scored on the validation part of the authors' 60/20/20 split
  (`dataset.part=train`): accuracy and the weighted F1 their tstr.py picks the checkpoint by
  (`eval.best=tstr_vali_f1`).
- `disc`, `pred`: TimeGAN's discriminative score (|accuracy − 0.5| of a post-hoc GRU telling real from
  generated, on a held-out fifth) and predictive score (MAE on real sequences of a GRU trained on
  generated ones to predict each next step).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from gancli.core.errors import GanError
from gancli.metrics.base import METRICS, Metric


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, sigma: float | None = None) -> tuple[float, float]:
    """(MMD²_u with k(a, b) = exp(−‖a − b‖² / (2σ²)), σ); σ: the median pairwise distance of x ∪ y by default."""
    x, y = x.double().flatten(1), y.double().flatten(1)
    if sigma is None:
        pooled = torch.cat([x, y])
        d = torch.cdist(pooled, pooled)
        sigma = d[torch.triu_indices(len(pooled), len(pooled), 1).unbind()].median().item()
    gamma = 1.0 / (2 * sigma**2)
    kxx = torch.exp(-gamma * torch.cdist(x, x) ** 2)
    kyy = torch.exp(-gamma * torch.cdist(y, y) ** 2)
    kxy = torch.exp(-gamma * torch.cdist(x, y) ** 2)
    m, n = len(x), len(y)
    value = (
        (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
        + (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
        - 2 * kxy.mean()
    )
    return value.item(), sigma


@METRICS.register("mmd")
class MMD(Metric):
    kinds = ("sequence",)
    needs_features = False
    values = ("mmd",)
    protocol = "MMD², RBF kernel on whole sequences, median-heuristic bandwidth, unbiased; vs held-out real ones"
    limit = 1000

    def check(self, ctx):
        super().check(ctx)
        if ctx.n < 2:
            raise GanError(f"mmd needs at least 2 samples (n={ctx.n}).")

    def held_out(self, ctx):
        return ctx.real.test

    def compute(self, ctx):
        n = min(ctx.n, self.limit)
        held_out = self.held_out(ctx).samples[:n]
        mine = ctx.real.train.samples[:n] if ctx.is_floor else ctx.samples[:n]
        return {self.values[0]: mmd2_unbiased(mine, held_out)[0]}


@METRICS.register("mmd_vali")
class ValidationMMD(MMD):
    """`mmd` against the validation part instead of the test part: what a checkpoint is chosen by
    (`eval.best=mmd_vali`), so the test part stays unseen until the chosen checkpoint is scored."""

    values = ("mmd_vali",)
    protocol = "MMD² as `mmd` (median heuristic, unbiased), vs the validation part (a third draw for sines)"

    def check(self, ctx):
        super().check(ctx)
        if ctx.real is None or ctx.real.vali is None:
            raise GanError(
                "mmd_vali scores a validation part: procedural data (sines, smooth) or a dataset trained on "
                "the authors' split (dataset.part=train); this data has none, so use mmd."
            )

    def held_out(self, ctx):
        return ctx.real.vali


# ------------------------------------------------------------------ MMD with the authors' bandwidth selection


def median_pairwise_distance(x: torch.Tensor) -> float:
    """The authors' bandwidth heuristic (mmd.median_pairwise_distance(X)): the median of ‖xᵢ − xⱼ‖ over every
    ordered pair of x, i = j included."""
    x = x.double().flatten(1)
    return torch.cdist(x, x).flatten().median().item()


def mix_rbf_mmd2_and_ratio(
    x: torch.Tensor, y: torch.Tensor, sigmas: torch.Tensor, estimate: str = "unbiased"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(MMD², MMD² / σ̂) for k = Σ_σ exp(−‖a − b‖² / (2σ²)) on two samples of the same size m, σ̂² the
    variance estimate of Sutherland et al. 2017 (opt-mmd), floored at 1e-8 under the square root.
    estimate: "unbiased" (U-statistic), "biased" (V-statistic, what the authors tune σ on), or "code" (the
    RGAN code's "unbiased" value: the U-statistic with the kernel's diagonal added back)."""
    x, y = x.double().flatten(1), y.double().flatten(1)
    m = len(x)
    if len(y) != m or m < 4:
        raise GanError(f"the tuned MMD compares two samples of one size ≥ 4 (got {m} and {len(y)}).")
    gammas = (1.0 / (2 * sigmas.double() ** 2)).view(-1, 1, 1)
    kernel = lambda d2: torch.exp(-gammas * d2).sum(0)  # noqa: E731
    dxx, dyy, dxy = (torch.cdist(a, b) ** 2 for a, b in ((x, x), (y, y), (x, y)))
    kxx, kyy, kxy = kernel(dxx), kernel(dyy), kernel(dxy)
    diag = float(len(sigmas))  # k(a, a) for every a
    rows_xx, rows_yy = kxx.sum(1) - diag, kyy.sum(1) - diag  # off-diagonal row sums
    rows_xy, cols_xy = kxy.sum(1), kxy.sum(0)
    sum_xx, sum_yy, sum_xy = rows_xx.sum(), rows_yy.sum(), kxy.sum()
    sq_xx, sq_yy, sq_xy = (kxx**2).sum() - m * diag**2, (kyy**2).sum() - m * diag**2, (kxy**2).sum()
    if estimate == "biased":
        mmd2 = (sum_xx + sum_yy + 2 * m * diag - 2 * sum_xy) / m**2
    elif estimate in ("unbiased", "code"):
        within = sum_xx + sum_yy + (2 * m * diag if estimate == "code" else 0)
        mmd2 = within / (m * (m - 1)) - 2 * sum_xy / m**2
    else:
        raise GanError(f"estimate='{estimate}' is not one of: unbiased, biased, code.")
    var = (
        2 / (m**2 * (m - 1) ** 2) * (2 * rows_xx @ rows_xx - sq_xx + 2 * rows_yy @ rows_yy - sq_yy)
        - (4 * m - 6) / (m**3 * (m - 1) ** 3) * (sum_xx**2 + sum_yy**2)
        + 4 * (m - 2) / (m**3 * (m - 1) ** 2) * (rows_xy @ rows_xy + cols_xy @ cols_xy)
        - 4 * (m - 3) / (m**3 * (m - 1) ** 2) * sq_xy
        - (8 * m - 12) / (m**5 * (m - 1)) * sum_xy**2
        + 8 / (m**3 * (m - 1)) * ((sum_xx + sum_yy) * sum_xy / m - rows_xx @ rows_xy - rows_yy @ cols_xy)
    )
    return mmd2, mmd2 / var.clamp_min(1e-8).sqrt()


def tune_sigmas(
    x: torch.Tensor, y: torch.Tensor, sigmas: torch.Tensor, lr: float = 0.05, max_steps: int = 2000, tol: float = 1e-3
) -> tuple[torch.Tensor, int]:
    """The authors' bandwidth search: RMSProp as TF 1's (decay 0.9, ε 1e-10, accumulator starting at 1) on
    −(biased MMD² / σ̂), until the ratio changes by ≤ tol between steps or after max_steps. (σ, steps).
    Their code keeps σ from one evaluation to the next (only the optimizer's state is reset); each call here
    starts from the σ it is given."""
    sigmas = sigmas.detach().double().clone().requires_grad_(True)
    ms = torch.ones_like(sigmas)
    previous, change, steps = 0.0, 2 * tol, 0
    while change > tol and steps < max_steps:
        _, ratio = mix_rbf_mmd2_and_ratio(x, y, sigmas, "biased")
        (grad,) = torch.autograd.grad(-ratio, sigmas)
        with torch.no_grad():
            ms.mul_(0.9).add_(0.1 * grad**2)
            sigmas -= lr * grad / (ms + 1e-10).sqrt()
        change, previous, steps = abs(ratio.item() - previous), ratio.item(), steps + 1
    return sigmas.detach(), steps


def mmd2_tuned(
    real: torch.Tensor, fake: torch.Tensor, tune_fraction: float = 0.2, estimate: str = "code", max_steps: int = 2000
) -> dict:
    """MMD² between real and fake sequences (same count) as the RGAN code evaluates a model: bandwidths
    h^−1 and h^3 from the real sequences' median distance h, tuned on the first `tune_fraction` of both,
    MMD² (and its t-statistic) on the rest. Returns {mmd2, ratio, sigmas, tuning_steps}."""
    n = min(len(real), len(fake))
    cut = int(tune_fraction * n)
    h = median_pairwise_distance(real[:n])
    start = torch.tensor([h**-1.0, h**3.0], dtype=torch.float64)
    sigmas, steps = tune_sigmas(real[:cut], fake[:cut], start, max_steps=max_steps)
    with torch.no_grad():
        mmd2, ratio = mix_rbf_mmd2_and_ratio(real[cut:n], fake[cut:n], sigmas, estimate)
    return {"mmd2": mmd2.item(), "ratio": ratio.item(), "sigmas": sigmas.tolist(), "tuning_steps": steps}


@METRICS.register("mmd_tuned")
class TunedMMD(Metric):
    kinds = ("sequence",)
    needs_features = False
    values = ("mmd_tuned",)
    protocol = (
        "MMD² as the RGAN code measures it: two RBF bandwidths tuned for the t-statistic on a fifth of "
        "the samples, MMD² (their estimate, diagonal included) on the rest; vs held-out real ones"
    )

    def check(self, ctx):
        super().check(ctx)
        if ctx.n < 20:
            raise GanError(f"mmd_tuned tunes on a fifth of the samples and estimates on the rest: n ≥ 20 (n={ctx.n}).")

    def compute(self, ctx):
        held_out = ctx.real.test.samples[: ctx.n]
        mine = ctx.real.train.samples[: ctx.n] if ctx.is_floor else ctx.samples
        n = min(len(held_out), len(mine))
        return {"mmd_tuned": mmd2_tuned(held_out[:n], mine[:n])["mmd2"]}


# ------------------------------------------------------------------ train on synthetic, test on real


def _forest(x: torch.Tensor, y: torch.Tensor):
    """The authors' classifier: sklearn's random forest of 500 trees (their other defaults are sklearn's too).
    n_jobs follows joblib's context (1 unless a caller sets joblib.parallel_config(n_jobs=...))."""
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=500, random_state=0, n_jobs=None)
    return forest.fit(x.flatten(1).numpy(), y.numpy())


def _accuracy(forest, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((forest.predict(x.flatten(1).numpy()) == y.numpy()).mean())


def _weighted_f1(forest, x: torch.Tensor, y: torch.Tensor) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y.numpy(), forest.predict(x.flatten(1).numpy()), average="weighted"))


def synthetic_like(draw, labels: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """As many synthetic sequences as `labels`, with the same classes (the authors tile the training labels):
    draw(class, n) → n sequences of that class. Returns (sequences, their labels), grouped by class."""
    counts = torch.bincount(labels.long(), minlength=num_classes).tolist()
    parts = [draw(c, k) for c, k in enumerate(counts) if k]
    return torch.cat(parts), torch.arange(num_classes).repeat_interleave(torch.tensor(counts))


def _synthetic_forest(ctx):
    """Per evaluation, shared by tstr and tstr_vali: the synthetic training set and the forest fitted to it."""
    memo = ctx.__dict__.setdefault("_tstr", {})
    if not memo:
        train = ctx.real.train
        synth, labels = synthetic_like(lambda c, k: ctx.draw({"class": c}, k), train.labels, ctx.num_classes)
        memo.update(synth=synth, labels=labels, forest=_forest(synth, labels))
    return memo


def _check_conditional(ctx, name: str) -> None:
    algo = ctx.algorithm
    if (
        algo is None
        or "class" not in algo.sample_options
        or getattr(algo, "num_classes", 0) != ctx.num_classes
        or not ctx.num_classes
    ):
        raise GanError(
            f"{name} asks the model for sequences of each class: it needs a checkpoint of a model "
            "conditioned on the dataset's labels (rcgan)."
        )


@METRICS.register("tstr")
class TSTR(Metric):
    kinds = ("sequence",)
    needs_features = False
    has_floor = False
    values = ("tstr", "trts", "trtr")
    protocol = (
        "random forest (500 trees): trained on as many synthetic sequences as real training ones, with "
        "their classes, tested on the real test part (TSTR); the reverse (TRTS); real on real (TRTR)"
    )

    def check(self, ctx):
        super().check(ctx)
        _check_conditional(ctx, "tstr")

    def compute(self, ctx):
        real = ctx.real
        memo = _synthetic_forest(ctx)
        key = f"tstr-real-forest-{real.key()}"
        if key not in ctx._shared:  # real data: one forest for every evaluation of a run
            ctx._shared[key] = _forest(real.train.samples, real.train.labels)
        on_real = ctx._shared[key]
        test_x, test_y = real.test.samples, real.test.labels
        return {
            "tstr": _accuracy(memo["forest"], test_x, test_y),
            "trts": _accuracy(on_real, memo["synth"], memo["labels"]),
            "trtr": _accuracy(on_real, test_x, test_y),
        }


@METRICS.register("tstr_vali")
class TSTRValidation(Metric):
    kinds = ("sequence",)
    needs_features = False
    has_floor = False
    values = ("tstr_vali", "tstr_vali_f1")
    protocol = (
        "tstr's forest on the validation part of the authors' 60/20/20 split: accuracy, and the weighted "
        "F1 their tstr.py picks the checkpoint by"
    )

    def check(self, ctx):
        super().check(ctx)
        _check_conditional(ctx, "tstr_vali")
        if ctx.real is None or ctx.real.vali is None:
            raise GanError(
                "tstr_vali scores a validation part: the authors' 60/20/20 split (train on dataset.part=train: "
                "mnist_seq, fashion_mnist_seq; rcgan on mnist_seq does by default) or a procedural set's third draw."
            )

    def compute(self, ctx):
        forest, vali = _synthetic_forest(ctx)["forest"], ctx.real.vali
        return {
            "tstr_vali": _accuracy(forest, vali.samples, vali.labels),
            "tstr_vali_f1": _weighted_f1(forest, vali.samples, vali.labels),
        }


class _GRU(nn.Module):
    def __init__(self, n_in: int, hidden: int, n_out: int):
        super().__init__()
        self.rnn = nn.GRU(n_in, hidden, num_layers=2, batch_first=True)
        self.out = nn.Linear(hidden, n_out)

    def forward(self, x):
        h, _ = self.rnn(x)
        return self.out(h)


def _fit(model: nn.Module, loss_fn, xs: torch.Tensor, ys: torch.Tensor, iterations: int, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for _ in range(iterations):
        idx = torch.randint(len(xs), (min(128, len(xs)),), generator=gen)
        loss = loss_fn(model(xs[idx]), ys[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


@METRICS.register("disc")
class DiscriminativeScore(Metric):
    kinds = ("sequence",)
    needs_features = False
    values = ("disc",)
    protocol = "TimeGAN's discriminative score: |accuracy − 0.5| of a 2-layer GRU telling real from generated"
    iterations = 500

    def compute(self, ctx):
        torch.manual_seed(0)
        fake = ctx.real.test.samples[: ctx.n] if ctx.is_floor else ctx.samples
        real = ctx.real.train.samples[: len(fake)]
        n = min(len(fake), len(real))
        x = torch.cat([real[:n], fake[:n]]).float()
        y = torch.cat([torch.ones(n), torch.zeros(n)])
        perm = torch.randperm(2 * n, generator=torch.Generator().manual_seed(1))
        cut = int(0.8 * 2 * n)
        tr, te = perm[:cut], perm[cut:]
        channels = x.shape[-1]
        model = _fit(
            _GRU(channels, max(4, channels // 2 + 1), 1),
            lambda out, t: nn.functional.binary_cross_entropy_with_logits(out[:, -1, 0], t),
            x[tr],
            y[tr],
            self.iterations,
        )
        with torch.no_grad():
            acc = ((model(x[te])[:, -1, 0] > 0).float() == y[te]).float().mean().item()
        return {"disc": abs(acc - 0.5)}


@METRICS.register("pred")
class PredictiveScore(Metric):
    kinds = ("sequence",)
    needs_features = False
    values = ("pred",)
    protocol = (
        "TimeGAN's predictive score: MAE on real sequences of a GRU trained on generated ones to predict the next step"
    )
    iterations = 500

    def check(self, ctx):
        super().check(ctx)
        if ctx.field.shape[0] < 2:
            raise GanError("pred predicts each next step: sequences need at least 2 steps.")

    def compute(self, ctx):
        torch.manual_seed(0)
        train = (ctx.real.train.samples[: ctx.n] if ctx.is_floor else ctx.samples).float()
        channels = train.shape[-1]
        model = _fit(
            _GRU(channels, max(4, channels // 2 + 1), channels),
            lambda out, t: (out - t).abs().mean(),
            train[:, :-1],
            train[:, 1:],
            self.iterations,
        )
        test = ctx.real.test.samples.float()
        with torch.no_grad():
            mae = (model(test[:, :-1]) - test[:, 1:]).abs().mean().item()
        return {"pred": mae}
