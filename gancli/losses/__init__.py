"""Adversarial objectives (on D's logits), the auxiliary terms some families add (class likelihood,
mutual information, feature matching), and the regularisers that keep a critic well-behaved."""

from gancli.losses.adversarial import LOSSES, AdversarialLoss, build_loss, plain_loss
from gancli.losses.auxiliary import class_nll, feature_matching, info_nll, mutual_information_bound
from gancli.losses.penalties import clip_weights, gradient_penalty, r1_penalty, zero_term

__all__ = [
    "LOSSES",
    "AdversarialLoss",
    "build_loss",
    "class_nll",
    "clip_weights",
    "feature_matching",
    "gradient_penalty",
    "info_nll",
    "mutual_information_bound",
    "plain_loss",
    "r1_penalty",
    "zero_term",
]
