"""StyleGAN (Karras et al. 2019): ProGAN's growth (levels, fades, the reals' resizing, the discriminator)
with the style-based generator, the non-saturating logistic loss with R1 on reals (γ = 10, every D step),
style mixing (probability 0.9) and the running average of w for truncation. Sampling has the style
modes (seeds=, trunc=, style_mix=, noise_only=) at the checkpoint's level.
"""

from __future__ import annotations

import torch.nn.functional as F

from gancli.algorithms import style_sampling
from gancli.algorithms.base import ALGORITHMS
from gancli.algorithms.progan import ProGAN, at_side
from gancli.core.rules import COUNT, POSITIVE, PROB
from gancli.losses import r1_penalty
from gancli.nets.stylegan import StyleGANGenerator
from gancli.nets.stylegan2 import draw_mixed_ws

#: the mapping network's keys, shared by both style generators
MAPPING_RULES = {
    "model.w_dim": COUNT,
    "model.mapping_layers": COUNT,
    "model.mapping_lr_mul": POSITIVE,
    "model.style_mixing": PROB,
}


@ALGORITHMS.register("stylegan")
class StyleGAN(ProGAN):
    config_rules = MAPPING_RULES
    sample_options = style_sampling.OPTIONS
    export_options = {**ProGAN.export_options, **style_sampling.EXPORT_OPTIONS}
    num_classes = 0

    def __init__(self, cfg, spec, device, precision):
        m = cfg.model
        self.r1_gamma, self.mixing = float(m.r1_gamma), float(m.style_mixing)
        super().__init__(cfg, spec, device, precision)

    def build_generator(self, m, channels, resolution):
        return StyleGANGenerator(
            self.z_dim,
            channels,
            resolution,
            int(m.w_dim),
            int(m.width),
            int(m.max_width),
            int(m.mapping_layers),
            float(m.mapping_lr_mul),
        )

    def generate(self, n, level, alpha, track=False):
        ws = draw_mixed_ws(
            self.G.mapping, n, self.z_dim, self.mixing, self.device, track=True, active=2 * (level + 1)
        )  # the layers the current level uses (the reference's cur_layers)
        return self.G.synthesis(ws, "random", None, level, alpha)

    def d_loss(self, real, fake, level, alpha):
        """softplus(D(G(z))) + softplus(−D(x)) + (γ/2)·E‖∇D(x)‖²."""
        x = real.detach().requires_grad_(True)
        with self.precision.autocast():
            d_real, d_fake = self.D(x, level, alpha), self.D(fake, level, alpha)
            loss = F.softplus(d_fake.float()).mean() + F.softplus(-d_real.float()).mean()
        r1 = r1_penalty(d_real, x, self.precision.loss_scale("D"))
        return loss + self.r1_gamma / 2 * r1, {"loss/D": loss.detach(), "r1": r1.detach()}

    def g_loss(self, d_fake):
        return F.softplus(-d_fake.float()).mean()

    def class_names(self):
        return ()

    def sample(self, options, n, nrow, generator, batch_size, grid=True, nets=None):
        panels = style_sampling.sample(self, (nets or self.nets)["G"], options, n, nrow, generator, batch_size, grid)
        side = self.field.shape[-1]
        for p in panels.values():  # a checkpoint of a coarser level: shown at the dataset's size
            p.data = at_side(p.data, side)
        return panels

    def export(self, options=None):
        options = options or {}
        level, side = self.export_level(options.get("level")), self.field.shape[-1]
        return style_sampling.export(
            self,
            lambda G, ws: at_side(G.synthesis(ws, "const", None, level, 1.0), side),
            options,
            **self.level_details(level),
        )
