"""Sequence metrics, in the data's own units:

- `mmd`: MMD² between generated and held-out real sequences (the test part), RBF kernel on whole
  sequences, bandwidth by the median heuristic, unbiased estimator (the RGAN paper's measure; its code
  then tunes a mixture of bandwidths, gancli keeps the heuristic one). Its floor: the training part
  against the same held-out sequences.
- `tstr`: train on synthetic, test on real (Esteban et al.): a random forest of 500 trees (the paper's
  classifier) fitted to class-conditional samples and scored on the real test part; beside it TRTS
  (fitted to the real training part, scored on samples) and TRTR (real on real, the ceiling).
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
    gamma = 1.0 / (2 * sigma ** 2)
    kxx = torch.exp(-gamma * torch.cdist(x, x) ** 2)
    kyy = torch.exp(-gamma * torch.cdist(y, y) ** 2)
    kxy = torch.exp(-gamma * torch.cdist(x, y) ** 2)
    m, n = len(x), len(y)
    value = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1)) + (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1)) \
        - 2 * kxy.mean()
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

    def compute(self, ctx):
        n = min(ctx.n, self.limit)
        held_out = ctx.real.test.samples[:n]
        mine = ctx.real.train.samples[:n] if ctx.is_floor else ctx.samples[:n]
        return {"mmd": mmd2_unbiased(mine, held_out)[0]}


def _forest(x: torch.Tensor, y: torch.Tensor):
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=500, random_state=0, n_jobs=1)
    return forest.fit(x.flatten(1).numpy(), y.numpy())


def _accuracy(forest, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((forest.predict(x.flatten(1).numpy()) == y.numpy()).mean())


@METRICS.register("tstr")
class TSTR(Metric):
    kinds = ("sequence",)
    needs_features = False
    has_floor = False
    values = ("tstr", "trts", "trtr")
    protocol = "random forest (500 trees): trained on synthetic, tested on real (TSTR), the reverse (TRTS), real on real"

    def check(self, ctx):
        super().check(ctx)
        algo = ctx.algorithm
        if algo is None or "class" not in algo.sample_options or getattr(algo, "num_classes", 0) != ctx.num_classes \
                or not ctx.num_classes:
            raise GanError("tstr asks the model for sequences of each class: it needs a checkpoint of a model "
                           "conditioned on the dataset's labels (rcgan).")

    def compute(self, ctx):
        real = ctx.real
        k, per = ctx.num_classes, max(1, ctx.n // ctx.num_classes)
        synth = torch.cat([ctx.draw({"class": c}, per) for c in range(k)])
        labels = torch.arange(k).repeat_interleave(per)
        train_x, train_y = real.train.samples[:len(synth)], real.train.labels[:len(synth)]
        test_x, test_y = real.test.samples, real.test.labels
        on_synth, on_real = _forest(synth, labels), _forest(train_x, train_y)
        return {"tstr": _accuracy(on_synth, test_x, test_y), "trts": _accuracy(on_real, synth, labels),
                "trtr": _accuracy(on_real, test_x, test_y)}


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
        fake = ctx.real.test.samples[:ctx.n] if ctx.is_floor else ctx.samples
        real = ctx.real.train.samples[:len(fake)]
        n = min(len(fake), len(real))
        x = torch.cat([real[:n], fake[:n]]).float()
        y = torch.cat([torch.ones(n), torch.zeros(n)])
        perm = torch.randperm(2 * n, generator=torch.Generator().manual_seed(1))
        cut = int(0.8 * 2 * n)
        tr, te = perm[:cut], perm[cut:]
        channels = x.shape[-1]
        model = _fit(_GRU(channels, max(4, channels // 2 + 1), 1),
                     lambda out, t: nn.functional.binary_cross_entropy_with_logits(out[:, -1, 0], t),
                     x[tr], y[tr], self.iterations)
        with torch.no_grad():
            acc = ((model(x[te])[:, -1, 0] > 0).float() == y[te]).float().mean().item()
        return {"disc": abs(acc - 0.5)}


@METRICS.register("pred")
class PredictiveScore(Metric):
    kinds = ("sequence",)
    needs_features = False
    values = ("pred",)
    protocol = "TimeGAN's predictive score: MAE on real sequences of a GRU trained on generated ones to predict the next step"
    iterations = 500

    def check(self, ctx):
        super().check(ctx)
        if ctx.field.shape[0] < 2:
            raise GanError("pred predicts each next step: sequences need at least 2 steps.")

    def compute(self, ctx):
        torch.manual_seed(0)
        train = (ctx.real.train.samples[:ctx.n] if ctx.is_floor else ctx.samples).float()
        channels = train.shape[-1]
        model = _fit(_GRU(channels, max(4, channels // 2 + 1), channels),
                     lambda out, t: (out - t).abs().mean(), train[:, :-1], train[:, 1:], self.iterations)
        test = ctx.real.test.samples.float()
        with torch.no_grad():
            mae = (model(test[:, :-1]) - test[:, 1:]).abs().mean().item()
        return {"pred": mae}
