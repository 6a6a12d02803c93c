"""InfoGAN (Chen et al. 2016): G's input is noise z plus latent codes c — one categorical code
Cat(K) and n continuous codes U(−1, 1). A head Q on D's features predicts c from G(z, c); both D
(with Q) and G minimise λ·E[−log Q(c|x)], which maximises a lower bound on the mutual information
I(c; G(z, c)). No labels are used: the codes find the factors on their own.

Codes are named as in the paper: c1 is the categorical code, c2, c3, ... the continuous ones.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from gancli.algorithms import gan_sampling
from gancli.algorithms.base import ALGORITHMS, SampleOption
from gancli.algorithms.gan import GAN
from gancli.algorithms.priors import build_prior
from gancli.core.errors import GanError
from gancli.core.rules import NONNEG, NONNEG_INT
from gancli.losses import info_nll, mutual_information_bound
from gancli.nets import build_generator

UNIFORM = build_prior("uniform")  # the continuous codes' prior, U(−1, 1), whatever the noise's


@ALGORITHMS.register("infogan")
class InfoGAN(GAN):
    config_rules = {
        "model.codes.categorical": NONNEG_INT,
        "model.codes.continuous": NONNEG_INT,
        "model.codes.cat_weight": NONNEG,
        "model.codes.cont_weight": NONNEG,
    }
    sample_options = {
        **gan_sampling.OPTIONS,
        "traverse": SampleOption(
            str,
            "a latent code to sweep: c2, c3, ... (continuous, −2..2, one row per "
            "category) or c1 (the categories, one row per z)",
            formats=("png",),
        ),
    }

    def __init__(self, cfg, spec, device, precision):
        codes = cfg.model.codes
        self.n_cat, self.n_cont = int(codes.categorical), int(codes.continuous)
        if self.n_cat < 0 or self.n_cont < 0 or self.n_cat + self.n_cont == 0 or self.n_cat == 1:
            raise GanError(
                f"model.codes: categorical={self.n_cat}, continuous={self.n_cont}; InfoGAN needs at least "
                "one code (categorical 0 or ≥ 2 values, continuous ≥ 0)."
            )
        self.cat_weight, self.cont_weight = float(codes.cat_weight), float(codes.cont_weight)
        cond = cfg.model.get("condition") or {}
        if any(cond.get(k, "none") != "none" for k in ("generator", "discriminator")):
            raise GanError(
                "infogan learns its codes without labels, so model.condition.generator and "
                "model.condition.discriminator must be none (for labels, use cgan, cdcgan or acgan)."
            )
        super().__init__(cfg, spec, device, precision)

    # -- networks ---------------------------------------------------------------------------------
    def build_generator(self, nets, cond: dict) -> nn.Module:
        return build_generator(nets.generator, self.field, self.z_dim + self.n_cat + self.n_cont)

    def d_heads(self) -> dict[str, int]:
        return {"q": self.n_cat + self.n_cont}

    def sample_classes(self) -> int:
        return self.n_cat

    # -- codes ------------------------------------------------------------------------------------
    def latent(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None) -> dict:
        inputs = super().latent(n, None, generator)  # the noise (InfoGAN's G sees no dataset labels)
        if self.n_cat:
            if labels is None:
                labels = self._draw(torch.randint, self.n_cat, (n,), generator=generator)
            inputs["categorical"] = labels.to(self.device)
        if self.n_cont:
            inputs["continuous"] = UNIFORM.draw((n, self.n_cont), self.device, generator)
        return inputs

    def g_forward(self, G: nn.Module, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        parts = [inputs["z"]]
        if self.n_cat:
            parts.append(F.one_hot(inputs["categorical"], self.n_cat).to(inputs["z"].dtype))
        if self.n_cont:
            parts.append(inputs["continuous"].to(inputs["z"].dtype))
        return G(torch.cat(parts, 1))

    def q(self, h: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Q's categorical logits and continuous means from D's features."""
        out = self.D.heads["q"](h).float()
        return (out[:, : self.n_cat] if self.n_cat else None), (out[:, self.n_cat :] if self.n_cont else None)

    @torch.no_grad()
    def predict_codes(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Q's guess of (categorical code, continuous codes) for samples x — e.g. real images to cluster."""
        cat_logits, cont = self.q(self.D(x)[1])
        return (cat_logits.argmax(1) if cat_logits is not None else None), cont

    def _info(self, h: torch.Tensor, inputs):
        cat_logits, cont_mean = self.q(h)
        cat, cont = inputs.get("categorical"), inputs.get("continuous")
        loss = info_nll(cat_logits, cat, cont_mean, cont, self.cat_weight, self.cont_weight)
        with torch.no_grad():
            mi = mutual_information_bound(cat_logits, cat, self.n_cat, cont_mean, cont)
        return loss, {"mi_bound": mi}

    def d_aux(self, h_real, h_fake, inputs):
        return self._info(h_fake, inputs)

    def g_aux(self, h_fake, inputs):
        return self._info(h_fake, inputs)

    def input_about(self) -> dict[str, str]:
        about = {"z": f"noise, {self.prior.about}"}
        if self.n_cat:
            about["categorical"] = f"the categorical code c1, 0 to {self.n_cat - 1}"
        if self.n_cont:
            about["continuous"] = f"the continuous codes c2..c{self.n_cont + 1}, U(-1, 1) in training"
        return about

    # -- sampling ---------------------------------------------------------------------------------
    def code_names(self) -> list[str]:
        return (["c1"] if self.n_cat else []) + [f"c{i + 1 + (1 if self.n_cat else 0)}" for i in range(self.n_cont)]

    def traversal_inputs(self, code: str, cols: int, generator: torch.Generator) -> tuple[dict, int]:
        """The paper's figure: one shared z. For a continuous code, rows are the categorical values and
        columns sweep the code from −2 to 2 (other continuous codes at 0); for c1, columns are the
        categories and rows are different z."""
        names = self.code_names()
        if code not in names:
            raise GanError(
                f"traverse='{code}' is not one of this model's codes: {', '.join(names)} "
                f"(c1 categorical with {self.n_cat} values, then the continuous codes)."
            )
        if code == "c1":
            rows = max(1, cols)
            z = self.prior.draw((rows, 1, self.z_dim), generator=generator).expand(rows, self.n_cat, self.z_dim)
            cat = torch.arange(self.n_cat).repeat(rows)
            inputs = {"z": z.reshape(-1, self.z_dim), "categorical": cat}
            if self.n_cont:
                inputs["continuous"] = torch.zeros(rows * self.n_cat, self.n_cont)
            return {k: v.to(self.device) for k, v in inputs.items()}, self.n_cat
        j = names.index(code) - (1 if self.n_cat else 0)
        rows = self.n_cat or 1
        z = self.prior.draw((1, self.z_dim), generator=generator).expand(rows * cols, self.z_dim)
        cont = torch.zeros(rows, cols, self.n_cont)
        cont[:, :, j] = torch.linspace(-2, 2, cols)
        inputs = {"z": z.contiguous(), "continuous": cont.view(rows * cols, self.n_cont)}
        if self.n_cat:
            inputs["categorical"] = torch.arange(rows).repeat_interleave(cols)
        return {k: v.to(self.device) for k, v in inputs.items()}, cols
