"""Measures of generative models, one interface (`base.Metric`, registered by name) for all of them:
image metrics on extracted features (FID, KID, IS, precision / recall, density / coverage), mode coverage
on 2-D mixtures, class accuracy of conditional samples, InfoGAN's code accuracy, and sequence measures
(MMD², TSTR, TimeGAN's discriminative and predictive scores, the sines' fitted parameter range), and
ProGAN's sliced Wasserstein distance. `evaluate` scores a model or a set of samples with several at once,
beside the floor real test data reaches."""

from gancli.metrics import classes, image, points, sequences, sines, swd, translation  # noqa: F401  (registration)
from gancli.metrics.base import HIGHER_IS_BETTER, METRICS, Metric, better, higher_is_better, labelled, value_of
from gancli.metrics.suite import EvalContext, Report, evaluate, resolve

__all__ = [
    "HIGHER_IS_BETTER",
    "METRICS",
    "Metric",
    "better",
    "higher_is_better",
    "labelled",
    "value_of",
    "EvalContext",
    "Report",
    "evaluate",
    "resolve",
]
