"""StyleGAN2 (Karras et al. 2020) as stylegan2-ada-pytorch trains it, without custom ops: the
non-saturating logistic loss; style mixing (two latents, a random crossover, probability 0.9); lazy R1 on
reals every 16 D steps (γ/2 · E‖∇D(x)‖², times the interval) and path-length regularisation every 4 G
steps (weight 2, a batch halved, the mean's decay 0.01), each lazy network's Adam lr and β rescaled for
its interval; the path-length mean is kept in the checkpoint. With `model.condition.generator` set, the
mapping network embeds the class and D projects on it (a conditional StyleGAN2 is one override).
"""

from __future__ import annotations

import math

import torch

from gancli.algorithms import style_sampling
from gancli.algorithms.base import ALGORITHMS, Algorithm
from gancli.algorithms.optim import build_optimizer
from gancli.algorithms.stylegan import MAPPING_RULES
from gancli.core.eager import eager, frozen
from gancli.core.errors import GanError
from gancli.core.rules import COUNT, NONNEG, PROB
from gancli.losses import plain_loss, r1_penalty, zero_term
from gancli.nets.stylegan2 import ResidualDiscriminator, StyleGenerator, draw_mixed_ws
from gancli.viz.panel import Panel


def path_length_penalty(lengths: torch.Tensor, pl_mean: torch.Tensor, decay: float) -> torch.Tensor:
    """E(ℓ − a)² with a = lerp(a₀, E ℓ, decay), as stylegan2-ada-pytorch computes it: the updated mean a
    stays in the graph, so a share `decay` of the gradient flows through it (∂/∂ℓᵢ = 2/N·(ℓᵢ − a) −
    decay·2/N²·Σⱼ(ℓⱼ − a)); `pl_mean` (a₀) takes a's value, detached."""
    mean = torch.lerp(pl_mean, lengths.mean(), decay)
    pl_mean.copy_(mean.detach())
    return (lengths - mean).square().mean()


@ALGORITHMS.register("stylegan2")
class StyleGAN2(Algorithm):
    data_fields = {"x": ("image",)}
    data_doc = "generates images (a field 'x')"
    config_rules = {
        **MAPPING_RULES,
        "model.width": COUNT,
        "model.max_width": COUNT,
        "model.mbstd_group": COUNT,
        "model.r1_gamma": NONNEG,
        "model.r1_every": COUNT,
        "model.pl_weight": NONNEG,
        "model.pl_every": COUNT,
        "model.pl_decay": PROB,
        "model.pl_batch_shrink": COUNT,
    }
    ema_nets = ("G",)
    sample_nets = ("G",)
    sample_options = style_sampling.OPTIONS
    export_options = style_sampling.EXPORT_OPTIONS
    step_functions = ("d_main", "g_main")  # Dreg and Greg run eagerly (double backward)

    def __init__(self, cfg, spec, device, precision):
        super().__init__(cfg, spec, device, precision)
        m = cfg.model
        x = spec["x"]
        self.field, self.z_dim = x, int(m.z_dim)
        cond = (m.get("condition") or {}).get("generator", "none")
        self.num_classes = 0
        if cond != "none":
            y = spec.fields.get("y")
            if y is None or not y.num_classes:
                raise GanError(
                    f"model.condition.generator={cond}: a conditional StyleGAN2 needs class labels, but "
                    f"dataset '{cfg.dataset.name}' has none."
                )
            self.num_classes = y.num_classes
        c, r = x.shape[0], x.shape[-1]
        self.G = StyleGenerator(
            self.z_dim,
            c,
            r,
            int(m.w_dim),
            int(m.width),
            int(m.max_width),
            int(m.mapping_layers),
            float(m.mapping_lr_mul),
            self.num_classes,
        ).to(device)
        self.D = ResidualDiscriminator(c, r, int(m.width), int(m.max_width), int(m.mbstd_group), self.num_classes).to(
            device
        )
        self.nets = {"G": self.G, "D": self.D}
        self.r1_gamma, self.r1_every = float(m.r1_gamma), int(m.r1_every)
        self.pl_weight, self.pl_every = float(m.pl_weight), int(m.pl_every)
        self.pl_decay, self.pl_shrink = float(m.pl_decay), int(m.pl_batch_shrink)
        self.mixing = float(m.style_mixing)
        self.optimizers = {
            "G": build_optimizer(cfg.optimizer, self.G.parameters(), "g", self.pl_every if self.pl_weight else 1),
            "D": build_optimizer(cfg.optimizer, self.D.parameters(), "d", self.r1_every if self.r1_gamma else 1),
        }
        self.loss = plain_loss(cfg)
        self.pl_mean = torch.zeros((), device=device)

    # -- one iteration ----------------------------------------------------------------------------
    def draw_ws(self, n: int, labels: torch.Tensor | None) -> torch.Tensor:
        """Every training draw also moves the running average of w, as the reference's G evaluations do."""
        return draw_mixed_ws(self.G.mapping, n, self.z_dim, self.mixing, self.device, labels, track=True)

    def _labels(self, batch, n):
        return batch["y"][:n] if self.num_classes else None

    def train_step(self, next_batch, step):
        """StyleGAN2-ADA's four phases: Dmain, Dreg (lazy R1), Gmain, Greg (lazy path length)."""
        batch = next_batch()
        real = batch["x"]
        n = len(real)
        labels = self._labels(batch, n)
        logs = {"loss/D": self.d_main(real, labels)}
        if self.r1_gamma and step % self.r1_every == 0:
            logs["r1"] = self.d_reg(real, labels)
        with frozen(self.D):
            logs["loss/G"] = self.g_main(n, labels)
            if self.pl_weight and step % self.pl_every == 0:
                logs["pl_penalty"] = self.g_reg(max(1, n // self.pl_shrink), labels)
        return logs

    def d_main(self, real: torch.Tensor, labels) -> torch.Tensor:
        """D: fakes of mixed styles against reals."""
        with self.precision.autocast():
            with torch.no_grad():
                fake = self.G.synthesis(self.draw_ws(len(real), labels))
            loss = self.loss.d_loss(self.D(real, labels), self.D(fake, labels))
        self.precision.step("D", loss, self.optimizers["D"])
        return loss.detach()

    @eager  # R1 differentiates D's forward pass again
    def d_reg(self, real: torch.Tensor, labels) -> torch.Tensor:
        """Lazy R1 on reals, a D step of its own weighted by the interval; every D parameter gets a gradient
        (`zero_term`), as in the GAN family's lazy R1."""
        x = real.detach().requires_grad_(True)
        with self.precision.autocast():
            d_real = self.D(x, labels)
        r1 = r1_penalty(d_real, x, self.precision.loss_scale("D"))
        self.precision.step("D", r1 * (self.r1_gamma / 2) * self.r1_every + zero_term(d_real), self.optimizers["D"])
        return r1.detach()

    def g_main(self, n: int, labels) -> torch.Tensor:
        """G: fool D (frozen by the caller)."""
        with self.precision.autocast():
            loss = self.loss.g_loss(self.D(self.G.synthesis(self.draw_ws(n, labels)), labels))
        self.precision.step("G", loss, self.optimizers["G"])
        return loss.detach()

    @eager  # the path length differentiates G's synthesis again
    def g_reg(self, n: int, labels) -> torch.Tensor:
        """Lazy path-length regularisation: E(‖Jᵀy‖₂ − a)², y ~ N(0, I)/√(H·W), a the running mean of the
        lengths (decay pl_decay), updated first and kept in the graph (`path_length_penalty`). Every G
        parameter gets a gradient, zero where the penalty does not reach (ToRGB biases; `zero_term`), as
        the reference's Greg phase gives them."""
        ws = self.draw_ws(n, labels[:n] if labels is not None else None)
        img = self.G.synthesis(ws).float()
        noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
        (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
        lengths = grad.square().sum(2).mean(1).sqrt()
        penalty = path_length_penalty(lengths, self.pl_mean, self.pl_decay)
        self.precision.step("G", penalty * self.pl_weight * self.pl_every + zero_term(img), self.optimizers["G"])
        return penalty.detach()

    # -- state ------------------------------------------------------------------------------------
    def extra_state(self):
        return {"pl_mean": self.pl_mean}

    def load_extra_state(self, state):
        if "pl_mean" in state:
            self.pl_mean.copy_(state["pl_mean"])

    # -- pictures and sampling --------------------------------------------------------------------
    def sample_classes(self) -> int:
        return self.num_classes

    def class_names(self) -> tuple[str, ...]:
        return tuple(self.spec["y"].class_names) if self.num_classes else ()

    def panels(self, reference, nets, generator, n):
        z = torch.randn(n, self.z_dim, generator=generator)
        labels = (torch.arange(n) % self.num_classes) if self.num_classes else None
        x = style_sampling.synthesize(self, nets["G"], z, labels, 1.0, None, "const", None, 64)
        return {"samples": Panel("image", x, 8)}

    def sample(self, options, n, nrow, generator, batch_size, grid=True, nets=None):
        return style_sampling.sample(self, (nets or self.nets)["G"], options, n, nrow, generator, batch_size, grid)

    def export(self, options=None):
        return style_sampling.export(self, lambda G, ws: G.synthesis(ws, "const", None), options or {})
