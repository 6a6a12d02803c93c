"""Loss terms beside the adversarial one: ACGAN's class log-likelihood, InfoGAN's mutual-information
bound, and feature matching (Salimans et al. 2016)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def class_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """−E[log P(C = c | x)]: ACGAN's L_C with its sign flipped so that both players minimise it."""
    return F.cross_entropy(logits.float(), labels)


def info_nll(
    cat_logits: torch.Tensor | None,
    cat: torch.Tensor | None,
    cont_mean: torch.Tensor | None,
    cont: torch.Tensor | None,
    cat_weight: float = 1.0,
    cont_weight: float = 1.0,
) -> torch.Tensor:
    """The InfoGAN penalty λ_cat·E[−log Q(c_cat|x)] + λ_cont·E[−log Q(c_cont|x)] (summed over codes).

    Q(c_cont|x) is a factored Gaussian with unit variance (the original code's fixed-std setting),
    so its negative log-likelihood per code is ½(c − μ)² + ½ log 2π.
    """
    loss = torch.zeros((), device=(cat_logits if cat_logits is not None else cont_mean).device)
    if cat_logits is not None:
        loss = loss + cat_weight * F.cross_entropy(cat_logits.float(), cat)
    if cont_mean is not None:
        nll = 0.5 * (cont - cont_mean.float()) ** 2 + 0.5 * math.log(2 * math.pi)
        loss = loss + cont_weight * nll.sum(1).mean()
    return loss


def mutual_information_bound(
    cat_logits: torch.Tensor | None,
    cat: torch.Tensor | None,
    num_categories: int,
    cont_mean: torch.Tensor | None,
    cont: torch.Tensor | None,
) -> torch.Tensor:
    """L_I(G, Q) = E[log Q(c|x)] + H(c) ≤ I(c; G(z, c)), for c = (Cat(K), U(−1, 1)^n) (Chen et al. 2016).

    H(Cat(K)) = log K and H(U(−1, 1)) = log 2 per code. Reported as a metric; it approaches H(c)
    when Q recovers the codes.
    """
    entropy = 0.0
    if cat_logits is not None:
        entropy += math.log(num_categories)
    if cont_mean is not None:
        entropy += cont.shape[1] * math.log(2.0)
    return entropy - info_nll(cat_logits, cat, cont_mean, cont)


def feature_matching(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """‖E f(x) − E f(G(z))‖²₂ on D's penultimate features; real features carry no gradient."""
    return (real_features.detach().float().mean(0) - fake_features.float().mean(0)).pow(2).sum()
