"""ALI (Dumoulin et al. 2017) and BiGAN (Donahue et al. 2017): a generator G: z → x and an encoder
E: x → z trained together against one discriminator on joint pairs, which tells (x, E(x)) from (G(z), z).
At the optimum E inverts G. The two papers differ in the encoder (ALI: a reparameterised Gaussian;
BiGAN: deterministic) and in their networks, which the presets set.

The adversarial loss is any of gancli's on D's logits. D's step is `d_loss(real = D(x, E(x)), fake =
D(G(z), z))`; G and E share one update on the same objective with the pairs' roles swapped
(`d_loss(real = D(G(z), z), fake = D(x, E(x)))`, the non-saturating "inverted labels" of both papers).

`model.update`: simultaneous (both authors' code: one forward pass, D's and G/E's gradients taken at the same
parameters, one draw of z and of the encoder's ε, then both steps) or alternating (D steps, then G/E on a new
forward pass through the updated D). `model.d_batch`: D judges the two kinds of pairs as two batches
(`halves`, BiGAN's code, where BatchNorm in D normalises each kind apart) or as one (`joint`, ALI's code).
"""

from __future__ import annotations

import torch
from omegaconf import OmegaConf

from gancli.algorithms.base import ALGORITHMS
from gancli.algorithms.encoding import EncodingAlgorithm
from gancli.algorithms.optim import build_optimizer
from gancli.algorithms.priors import build_prior
from gancli.core.rules import number, one_of
from gancli.losses import plain_loss
from gancli.nets import build_generator
from gancli.nets.encoder import JointCritic, build_encoder

JOINT_KEYS = ("z_hidden", "joint_hidden", "dropout", "leak", "joint_norm", "zero_head")  # D(x, z)'s own keys
UPDATES, D_BATCHES = ("simultaneous", "alternating"), ("halves", "joint")


def _plain(node) -> dict:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)


def network_config(cfg):
    """The networks to build: the preset's, or on a dataset that pins its networks (2-D points) the pinned
    G and D body, an MLP encoder as wide as that D, and the preset's encoder kind, bound and scale and D(x, z)
    keys."""
    pinned = cfg.dataset.get("networks")
    if not pinned:
        return cfg.model
    nets = _plain(pinned)
    body = {k: v for k, v in nets["discriminator"].items() if k not in JOINT_KEYS}
    nets["encoder"] = {
        **body,
        "kind": str(OmegaConf.select(cfg.model, "encoder.kind", default="deterministic")),
        "bounded": bool(OmegaConf.select(cfg.model, "encoder.bounded", default=False)),
        "scale": str(OmegaConf.select(cfg.model, "encoder.scale", default="log_var")),
    }
    return OmegaConf.create(nets)


@ALGORITHMS.register("bigan")
class BiGAN(EncodingAlgorithm):
    data_fields = {"x": ("image", "points")}
    data_doc = "pairs samples of a field 'x' (images or points) with codes"
    config_rules = {
        "model.discriminator.dropout": number(0, 1, hi_open=True),
        "model.discriminator.leak": number(0, 1, hi_open=True),
        "model.discriminator.zero_head": one_of("true", "false", "True", "False"),
        "model.update": one_of(*UPDATES),
        "model.d_batch": one_of(*D_BATCHES),
    }
    ema_nets = ("decoder",)
    sample_nets = ("encoder", "decoder")

    def __init__(self, cfg, spec, device, precision):
        super().__init__(cfg, spec, device, precision)
        m = cfg.model
        nets = network_config(cfg)
        self.z_dim = int(nets.get("z_dim") or m.z_dim)
        self.prior = build_prior(str(m.noise))
        d = _plain(nets.discriminator)
        joint = {k: d.pop(k) for k in JOINT_KEYS if k in d}
        joint = {**{k: v for k, v in _plain(m.discriminator).items() if k in JOINT_KEYS}, **joint}
        self.nets = {
            "encoder": build_encoder(nets.encoder, self.field, self.z_dim).to(device),
            "decoder": build_generator(nets.generator, self.field, self.z_dim).to(device),
            "D": JointCritic(self.field, self.z_dim, d, **joint).to(device),
        }
        E, G = self.nets["encoder"], self.nets["decoder"]
        self.optimizers = {
            "G": build_optimizer(cfg.optimizer, [*G.parameters(), *E.parameters()], "g"),
            "D": build_optimizer(cfg.optimizer, self.nets["D"].parameters(), "d"),
        }
        self.loss = plain_loss(cfg)
        self.simultaneous = str(m.get("update", "alternating")) == "simultaneous"
        self.d_joint = str(m.get("d_batch", "halves")) == "joint"

    @property
    def latent_dim(self) -> int:
        return self.z_dim

    def pairs_logits(self, D, x, ex, gz, z) -> tuple[torch.Tensor, torch.Tensor]:
        """D's logits on the encoder's pairs (x, E(x)) and on the generator's pairs (G(z), z): two batches,
        or with `model.d_batch=joint` one batch of both, split after."""
        if not self.d_joint:
            return D(x, ex), D(gz, z)
        out = D(torch.cat([x, gz]), torch.cat([ex, z]))
        return out[: len(x)], out[len(x) :]

    def judge(self, x: torch.Tensor, z_prior: torch.Tensor, nets) -> tuple[torch.Tensor, torch.Tensor]:
        """D's logits on the encoder's pairs (x, E(x)) and on the generator's pairs (G(z), z)."""
        E, G, D = nets["encoder"], nets["decoder"], nets["D"]
        return self.pairs_logits(D, x, E(x), G(z_prior), z_prior)

    def train_step(self, next_batch, step):
        x = next_batch()["x"]
        z = self.prior.draw((len(x), self.z_dim), self.device)
        n = self.nets
        if self.simultaneous:  # one pass; each loss reaches only its own networks
            with self.precision.autocast():
                enc_pairs, gen_pairs = self.judge(x, z, n)
                loss_d = self.loss.d_loss(enc_pairs, gen_pairs)
                loss_g = self.loss.d_loss(gen_pairs, enc_pairs)
            self.precision.steps([("D", loss_d, self.optimizers["D"]), ("G", loss_g, self.optimizers["G"])])
            return {"loss/D": loss_d.detach(), "loss/G": loss_g.detach()}
        # D: encoder pairs are "real", generator pairs "fake"
        with self.precision.autocast():
            with torch.no_grad():
                ex, gz = n["encoder"](x), n["decoder"](z)
            loss_d = self.loss.d_loss(*self.pairs_logits(n["D"], x, ex, gz, z))
        self.precision.step("D", loss_d, self.optimizers["D"])
        # G and E in one update: the same pairs, roles swapped
        n["D"].requires_grad_(False)
        with self.precision.autocast():
            enc_pairs, gen_pairs = self.judge(x, z, n)
            loss_g = self.loss.d_loss(gen_pairs, enc_pairs)
        self.precision.step("G", loss_g, self.optimizers["G"])
        n["D"].requires_grad_(True)
        return {"loss/D": loss_d.detach(), "loss/G": loss_g.detach()}

    def ema_forward(self, nets, next_batch, n, generator):
        nets["decoder"](self.prior.draw((n, self.z_dim), generator=generator).to(self.device))

    # -- the encoding contract --------------------------------------------------------------------
    def encode_batch(self, x, nets):
        return {"z": nets["encoder"](x, sample=False)}

    def decode_batch(self, codes, nets):
        return nets["decoder"](codes["z"])

    def prior_codes(self, n, generator, labels=None):
        return {"z": self.prior.draw((n, self.z_dim), generator=generator)}

    def panels(self, reference, nets, generator, n):
        panels = super().panels(reference, nets, generator, n)
        if self.field.kind == "points":  # 2-D data: samples and reconstructions over the real points
            for k in ("samples", "reconstruction"):
                panels[k].overlay = reference["x"][:2000]
                panels[k].extras = self.field.extras
            panels.pop("input")
        return panels
