"""Adversarial objectives (on D's logits) and the regularisers that keep a critic well-behaved."""

from gancli.losses.adversarial import LOSSES, AdversarialLoss, build_loss
from gancli.losses.penalties import clip_weights, gradient_penalty

__all__ = ["LOSSES", "AdversarialLoss", "build_loss", "clip_weights", "gradient_penalty"]
