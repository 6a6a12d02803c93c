"""ACGAN (Odena et al. 2017): G is class-conditional; D is not, but has an auxiliary classifier head.

Both players minimise the class negative log-likelihood −L_C: D on real and generated samples, G on
generated ones. The adversarial part is whatever `loss` is configured (the paper: cross-entropy).
With `model.d_class_fakes=false` D's classifier learns from real samples only, so G cannot win the class
term with features that only D's view of fakes associates with a class.
"""

from __future__ import annotations

from gancli.algorithms.base import ALGORITHMS
from gancli.algorithms.gan import GAN
from gancli.core.rules import NONNEG
from gancli.losses import class_nll


@ALGORITHMS.register("acgan")
class ACGAN(GAN):
    config_rules = {"model.class_weight": NONNEG}
    requires_labels = True

    def __init__(self, cfg, spec, device, precision):
        super().__init__(cfg, spec, device, precision)
        self.class_weight = float(cfg.model.get("class_weight", 1.0))
        self.d_class_fakes = bool(cfg.model.get("d_class_fakes", True))

    def d_heads(self) -> dict[str, int]:
        return {"classifier": self.num_classes}

    def d_aux(self, h_real, h_fake, inputs):
        head = self.D.heads["classifier"]
        real_logits = head(h_real)
        nll = class_nll(real_logits, inputs["labels"])
        if self.d_class_fakes:
            nll = nll + class_nll(head(h_fake), inputs["labels"])
        acc = (real_logits.detach().argmax(1) == inputs["labels"]).float().mean()
        return self.class_weight * nll, {"class_nll": nll.detach(), "real_acc": acc}

    def g_aux(self, h_fake, inputs):
        nll = class_nll(self.D.heads["classifier"](h_fake), inputs["labels"])
        return self.class_weight * nll, {"class_nll": nll.detach()}
