"""GAN objectives written on raw discriminator outputs (logits), each a small class.

All use the numerically stable softplus form: −log σ(t) = softplus(−t), −log(1 − σ(t)) = softplus(t).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gancli.core.errors import GanError
from gancli.core.registry import Registry


class AdversarialLoss:
    """d_loss(real logits, fake logits) and g_loss(fake logits); both return a scalar mean."""

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def smooth_real(self, s: float) -> None:
        """One-sided label smoothing (Salimans et al. 2016): D's target for real samples becomes 1 − s."""
        raise GanError(
            f"tricks.label_smoothing applies to target-based losses (minimax, nonsat, lsgan); "
            f"'{type(self).__name__}' has no real-sample target. Use tricks.label_smoothing=0."
        )


LOSSES: Registry[type[AdversarialLoss]] = Registry("loss")


class _CrossEntropyD(AdversarialLoss):
    real_target = 1.0

    def d_loss(self, real, fake):
        # −t·log D(x) − (1 − t)·log(1 − D(x)) − log(1 − D(G(z))); t = 1 unless smoothed
        t = self.real_target
        real_term = (
            F.softplus(-real).mean() if t == 1.0 else (t * F.softplus(-real) + (1 - t) * F.softplus(real)).mean()
        )
        return real_term + F.softplus(fake).mean()

    def smooth_real(self, s: float) -> None:
        self.real_target = 1.0 - s


@LOSSES.register("minimax")
class Minimax(_CrossEntropyD):
    """Saturating: G minimises log(1 − D(G(z))) = −softplus(t)."""

    def g_loss(self, fake):
        return -F.softplus(fake).mean()


@LOSSES.register("nonsat")
class NonSaturating(_CrossEntropyD):
    """Non-saturating: G minimises −log D(G(z)) = softplus(−t)."""

    def g_loss(self, fake):
        return F.softplus(-fake).mean()


@LOSSES.register("lsgan")
class LeastSquares(AdversarialLoss):
    """½E[(D(x) − b)²] + ½E[(D(G(z)) − a)²] for D, ½E[(D(G(z)) − c)²] for G."""

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0):
        self.a, self.b, self.c = a, b, c

    def d_loss(self, real, fake):
        return 0.5 * ((real - self.b) ** 2).mean() + 0.5 * ((fake - self.a) ** 2).mean()

    def g_loss(self, fake):
        return 0.5 * ((fake - self.c) ** 2).mean()

    def smooth_real(self, s: float) -> None:
        self.b = self.b - s * (self.b - self.a)  # move the real target s of the way towards the fake one


@LOSSES.register("wgan")
class Wasserstein(AdversarialLoss):
    """Critic maximises E[D(x)] − E[D(G(z))]; G maximises E[D(G(z))]."""

    def d_loss(self, real, fake):
        return fake.mean() - real.mean()

    def g_loss(self, fake):
        return -fake.mean()


@LOSSES.register("hinge")
class Hinge(AdversarialLoss):
    """D: E[relu(1 − D(x))] + E[relu(1 + D(G(z)))]; G: −E[D(G(z))]."""

    def d_loss(self, real, fake):
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()

    def g_loss(self, fake):
        return -fake.mean()


def build_loss(name: str, **params) -> AdversarialLoss:
    cls = LOSSES.get(name)
    try:
        return cls(**params)
    except TypeError as exc:
        raise GanError(f"loss '{name}': {exc}. Check the keys under loss.") from None


def plain_loss(cfg):
    """The adversarial loss of a family that applies no penalty or trick of its own accord (the encoder
    families, StyleGAN2's main terms): `cfg.loss` with its own keys (lsgan's a, b, c); a penalty, weight
    clipping or a stabilising trick set in the config is refused by name rather than silently dropped."""
    from omegaconf import OmegaConf

    loss = OmegaConf.to_container(cfg.loss, resolve=True)
    name = loss.pop("name")
    extras = {k: loss.pop(k, None) for k in ("gp_weight", "r1_weight", "clip", "r1_every")}
    unused = [f"loss.{k}={v}" for k, v in extras.items() if k != "r1_every" and v]
    tricks = OmegaConf.to_container(cfg.tricks, resolve=True) if "tricks" in cfg else {}
    unused += [f"tricks.{k}={v}" for k, v in tricks.items() if (v not in (None, 1) if k == "pack" else bool(v))]
    if unused:
        raise GanError(
            f"model '{cfg.model.name}' plays a plain adversarial loss (here loss={name}) and takes no "
            f"penalty, clipping or trick from loss.* or tricks.*; remove {', '.join(unused)} (loss=nonsat, "
            "lsgan or hinge; tricks=none)."
        )
    return build_loss(name, **loss)
