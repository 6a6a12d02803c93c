"""The unconditional GAN family: one G, one D, any adversarial loss, n_critic D steps per G step,
optional gradient penalty and weight clipping. Covers gan, dcgan, lsgan, wgan, wgan_gp and hinge."""

from __future__ import annotations

from typing import Callable, Mapping

import torch
import torch.nn as nn
from omegaconf import OmegaConf

from gancli.algorithms.base import ALGORITHMS, Algorithm, Batch, interpolation_grid
from gancli.losses import build_loss, clip_weights, gradient_penalty
from gancli.nets import build_discriminator, build_generator
from gancli.optim import build_optimizer


def network_config(cfg):
    """A dataset may pin the networks (points cannot go through conv nets); otherwise the model's apply."""
    return cfg.dataset.get("networks") or cfg.model


@ALGORITHMS.register("gan")
class GAN(Algorithm):
    def __init__(self, cfg, spec, device, precision):
        super().__init__(cfg, spec, device, precision)
        nets = network_config(cfg)
        self.z_dim = int(nets.get("z_dim") or cfg.model.z_dim)
        self.G = build_generator(nets.generator, spec, self.z_dim).to(device)
        self.D = build_discriminator(nets.discriminator, spec).to(device)
        self.nets = {"G": self.G, "D": self.D}
        self.optimizers = {
            "G": build_optimizer(cfg.optimizer, self.G.parameters(), "g"),
            "D": build_optimizer(cfg.optimizer, self.D.parameters(), "d"),
        }
        loss = OmegaConf.to_container(cfg.loss, resolve=True)
        self.gp_weight = float(loss.pop("gp_weight", 0.0) or 0.0)
        self.clip = loss.pop("clip", None)
        self.loss = build_loss(loss.pop("name"), **loss)
        self.n_critic = int(cfg.model.n_critic)

    def compile_blocker(self) -> str | None:
        if self.gp_weight:
            return "a gradient penalty (torch.compile does not support the double backward it needs)"
        return None

    def noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.z_dim, device=self.device)

    def d_step(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        fake = fake.detach()
        with self.precision.autocast():
            d_real, d_fake = self.D(real).float(), self.D(fake).float()
            loss = self.loss.d_loss(d_real, d_fake)
        logs = {"loss/D": loss.detach(), "D(x)": d_real.detach().mean(), "D(G(z))": d_fake.detach().mean()}
        if self.gp_weight:
            gp = gradient_penalty(self.D, real, fake, self.precision.loss_scale("D"), self.precision.autocast)
            loss = loss + self.gp_weight * gp
            logs["gp"] = gp.detach()
        self.precision.step("D", loss, self.optimizers["D"])
        if self.clip is not None:
            clip_weights(self.D, float(self.clip))
        return logs

    def g_step(self, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        self.D.requires_grad_(False)  # no D weight grads from the G step: half the backward work
        with self.precision.autocast():
            loss = self.loss.g_loss(self.D(fake).float())
        self.precision.step("G", loss, self.optimizers["G"])
        self.D.requires_grad_(True)
        return {"loss/G": loss.detach()}

    def train_step(self, next_batch: Callable[[], Batch], step: int) -> dict[str, torch.Tensor]:
        """n_critic D steps on fresh batches and noise; the last one's fakes (generated with grad) then
        serve the G step, as in the reference DCGAN loop: one G forward saved per iteration."""
        for i in range(self.n_critic):
            real = next_batch()["x"]
            last = i == self.n_critic - 1
            with torch.set_grad_enabled(last), self.precision.autocast():
                fake = self.G(self.noise(real.shape[0]))
            logs = self.d_step(real, fake)
        logs.update(self.g_step(fake))
        return logs

    def sample_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return {"z": torch.randn(n, self.z_dim, generator=generator).to(self.device)}

    def interpolation_inputs(self, rows: int, cols: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return {"z": interpolation_grid(self.z_dim, rows, cols, generator).to(self.device)}

    @torch.no_grad()
    def generate(self, inputs: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        G = (nets or self.nets)["G"]
        with self.precision.autocast():
            return G(inputs["z"]).float()
