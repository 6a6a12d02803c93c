"""One interface for every measure of a model: a Metric checks up front that it fits (data kind, sample
count, what the model can do), then computes named values from a shared evaluation context, which draws
the samples and extracts their features once for all metrics.

Each value has a direction (lower or higher is better): `eval.best=fid` keeps the checkpoint with the
lowest FID, `eval.best=precision` the highest precision.

A value measured on a feature extractor is written under a name that carries it, `fid@inception` or
`fid@classifier:fashion_mnist` (`labelled`): figures on different features never share a key, so no table,
leaderboard or best checkpoint can set one beside the other. Files written before this naming hold bare
`fid`, a third name, equally apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gancli.core.errors import GanError
from gancli.core.registry import Registry

if TYPE_CHECKING:
    from gancli.metrics.suite import EvalContext

#: every value a metric can report, and whether higher is better
HIGHER_IS_BETTER = {
    "fid": False,
    "kid": False,
    "kid_std": False,
    "is": True,
    "is_std": False,
    "precision": True,
    "recall": True,
    "density": True,
    "coverage": True,
    "modes": True,
    "hq": True,
    "rev_kl": False,
    "class_acc": True,
    "class_acc_worst": True,
    "code_acc": True,
    "relabel_acc": True,
    "relabel_acc_worst": True,
    "mmd": False,
    "mmd_tuned": False,
    "mmd_vali": False,
    "ks_freq": False,
    "ks_amp": False,
    "tstr": True,
    "trts": True,
    "trtr": True,
    "tstr_vali": True,
    "tstr_vali_f1": True,
    "disc": False,
    "pred": False,
    "l1": False,
    "psnr": True,
    "ssim": True,
    "swd": False,
}


def labelled(value: str, features: str | None) -> str:
    """The name a value is written under: `fid` on the `inception` features → `fid@inception`."""
    return f"{value}@{features}" if features else value


def value_of(key: str) -> str:
    """The value a written name measures: `fid@classifier:mnist` → `fid`."""
    return key.split("@", 1)[0]


def higher_is_better(key: str) -> bool:
    """For a value, or a written name that carries its features."""
    return HIGHER_IS_BETTER[value_of(key)]


def better(key: str, new: float, old: float | None) -> bool:
    """Is `new` an improvement on `old` for the value `key`?"""
    if old is None:
        return True
    return new > old if higher_is_better(key) else new < old


class Metric:
    """A measure of generated samples. `kinds`: the sample kinds it applies to; `needs_features`: it reads
    the feature extractor's output (so the extractor is built only when some metric does)."""

    kinds: tuple[str, ...] = ("image",)
    needs_features = True
    needs_logits = False
    #: the values it reports, in order (keys of HIGHER_IS_BETTER)
    values: tuple[str, ...] = ()
    protocol = ""

    def check(self, ctx: EvalContext) -> None:
        """Raise a GanError, before any sample is drawn, when this metric cannot be computed here."""
        if ctx.kind not in self.kinds:
            raise GanError(
                f"metric '{ctx.name_of(self)}' measures {' or '.join(self.kinds)} samples; this model makes "
                f"{ctx.kind}. For {ctx.kind}, use: {', '.join(ctx.metrics_for_kind())}."
            )

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        raise NotImplementedError


METRICS: Registry[type[Metric]] = Registry("metric")
