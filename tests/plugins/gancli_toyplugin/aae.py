"""A family that is not a GAN, written against gancli's Algorithm interface only: a miniature adversarial
autoencoder. Three networks (encoder, decoder, a critic on the latent code), three optimizers, BatchNorm
in the decoder (so the EMA copy needs `ema_forward`), its own state (a running spread of the codes), its
own panels (input | reconstruction | samples) and its own sampling option (temperature=).

This is the worked example of README's "Adding a model"; the tests train it, resume it exactly, draw it
and sample it from its checkpoint alone.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from gancli.algorithms.base import ALGORITHMS, Algorithm, SampleOption, generate_in_batches
from gancli.algorithms.optim import build_optimizer
from gancli.losses import build_loss
from gancli.nets import build_generator
from gancli.viz import Panel


def mlp(n_in: int, hidden: int, n_out: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, n_out))


@ALGORITHMS.register("toy_aae")
class ToyAAE(Algorithm):
    ema_nets = ("decoder",)  # what trainer.ema averages
    sample_nets = ("decoder", "encoder")  # what `gan sample` loads (no critic)
    sample_options = {"temperature": SampleOption(float, "toy_aae: scale of the prior draws it decodes (1: the prior)")}

    def __init__(self, cfg, spec, device, precision):
        super().__init__(cfg, spec, device, precision)
        m = cfg.model
        self.field = spec["x"]  # images: the data layer's named field
        self.z_dim = int(m.z_dim)
        size = int(torch.tensor(self.field.shape).prod())
        self.nets = {
            "encoder": mlp(size, int(m.encoder_hidden), self.z_dim).to(device),
            "decoder": build_generator(m.decoder, self.field, self.z_dim).to(device),  # a registered arch
            "critic": mlp(self.z_dim, int(m.critic_hidden), 1).to(device),
        }
        E, Dec, C = self.nets["encoder"], self.nets["decoder"], self.nets["critic"]
        self.optimizers = {
            "autoencoder": build_optimizer(cfg.optimizer, [*E.parameters(), *Dec.parameters()], "g"),
            "critic": build_optimizer(cfg.optimizer, C.parameters(), "d"),
            "encoder": build_optimizer(cfg.optimizer, E.parameters(), "g"),
        }
        self.loss = build_loss(cfg.loss.name)  # the adversarial loss of the latent game
        self.code_std = torch.ones((), device=device)  # its own state: a running spread of the codes

    # -- training ---------------------------------------------------------------------------------
    def train_step(self, next_batch, step):
        x = next_batch()["x"]
        E, Dec, C = self.nets["encoder"], self.nets["decoder"], self.nets["critic"]
        # reconstruction phase: encoder and decoder
        z = E(x)
        rec = F.mse_loss(Dec(z), x)
        self.precision.step("autoencoder", rec, self.optimizers["autoencoder"])
        # regularisation phase: the critic tells prior draws from codes, then the encoder plays G
        prior = torch.randn(len(x), self.z_dim, device=self.device)
        d_loss = self.loss.d_loss(C(prior).flatten(), C(E(x).detach()).flatten())
        self.precision.step("critic", d_loss, self.optimizers["critic"])
        C.requires_grad_(False)
        g_loss = self.loss.g_loss(C(E(x)).flatten())
        self.precision.step("encoder", g_loss, self.optimizers["encoder"])
        C.requires_grad_(True)
        with torch.no_grad():
            self.code_std.mul_(0.9).add_(0.1 * z.std())
        return {
            "loss/reconstruction": rec.detach(),
            "loss/D": d_loss.detach(),
            "loss/G": g_loss.detach(),
            "code_std": self.code_std.clone(),
        }

    def ema_forward(self, nets, next_batch, n, generator):
        nets["decoder"](torch.randn(n, self.z_dim, generator=generator).to(self.device))

    # -- state ------------------------------------------------------------------------------------
    def extra_state(self):
        return {"code_std": self.code_std}

    def load_extra_state(self, state):
        self.code_std.copy_(state["code_std"])

    # -- pictures and sampling --------------------------------------------------------------------
    def panels(self, reference, nets, generator, n):
        x = reference["x"].to(self.device)
        with torch.no_grad():
            rec = nets["decoder"](nets["encoder"](x))
            samples = nets["decoder"](torch.randn(n, self.z_dim, generator=generator).to(self.device))
        return {
            "input": Panel("image", x, 4),
            "reconstruction": Panel("image", rec, 4),
            "samples": Panel("image", samples, 4),
        }

    def sample(self, options, n, nrow, generator, batch_size, grid=True, nets=None):
        decoder = (nets or self.nets)["decoder"]
        z = torch.randn(n, self.z_dim, generator=generator) * float(options.get("temperature", 1.0))
        with torch.no_grad():
            x = generate_in_batches(lambda b: decoder(b["z"].to(self.device)), {"z": z}, batch_size)
        return {"samples": Panel(self.field.kind, x, nrow, meta={"z": z})}
