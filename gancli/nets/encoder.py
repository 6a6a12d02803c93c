"""Encoders x → z and the joint discriminator D(x, z) of ALI / BiGAN.

An encoder is any registered discriminator body (sample → features h, its last hidden layer) with a
linear head: deterministic (z = head(h)), or Gaussian (head gives μ and a log-scale, z = μ + σ·ε,
reparameterised so gradients reach μ and σ; `scale`: the second half read as log σ², σ = exp(o / 2), or as
log σ, σ = exp(o), ALI's code); `bounded`: z = 2·sigmoid(head(h)) − 1, inside the U(−1, 1) prior's cube
(BiGAN's code). Reusing the D bodies means every architecture table (MLP, DCGAN convs) serves as an encoder
too; the heads follow the body's init and its `affine` (no bias where the body has none).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from gancli.core.errors import GanError
from gancli.data.base import Field
from gancli.nets.builders import DISCRIMINATORS, _build, _params
from gancli.nets.layers import norm_layer

ENCODER_KINDS = ("deterministic", "gaussian")
SCALES = ("log_var", "log_sigma")


class Encoder(nn.Module):
    """x → z (B, z_dim); `heads` adds named outputs beside z from the same features (AAE's categorical y)."""

    def __init__(
        self,
        body: nn.Module,
        z_dim: int,
        kind: str = "deterministic",
        heads: dict[str, int] | None = None,
        bounded: bool = False,
        scale: str = "log_var",
    ):
        super().__init__()
        if bounded and kind != "deterministic":
            raise GanError(
                "model.encoder.bounded=true squashes a deterministic code into (−1, 1); a gaussian "
                "encoder samples its code, so set one or the other."
            )
        self.bounded = bounded
        if kind not in ENCODER_KINDS:
            raise GanError(f"model.encoder.kind='{kind}' is not one of: {', '.join(ENCODER_KINDS)}.")
        if scale not in SCALES:
            raise GanError(f"model.encoder.scale='{scale}' is not one of: {', '.join(SCALES)}.")
        self.body, self.z_dim, self.kind, self.scale = body, z_dim, kind, scale
        bias, init = getattr(body, "affine", True), getattr(body, "init_head", None)
        self.out = nn.Linear(body.feature_dim, z_dim * (2 if kind == "gaussian" else 1), bias=bias)
        self.heads = nn.ModuleDict({k: nn.Linear(body.feature_dim, n, bias=bias) for k, n in (heads or {}).items()})
        if init is not None:
            for layer in (self.out, *self.heads.values()):
                init(layer)

    def forward(self, x: torch.Tensor, sample: bool = True) -> torch.Tensor:
        return self.encode(x, sample)["z"]

    def encode(self, x: torch.Tensor, sample: bool = True) -> dict[str, torch.Tensor]:
        """{"z", "h" (the body's features), and "mean", "logvar" for a Gaussian encoder, and each head's logits};
        sample=False: z = μ."""
        h = self.body(x)
        out = {k: head(h) for k, head in self.heads.items()}
        out["h"] = h
        o = self.out(h)
        if self.kind == "deterministic":
            out["z"] = 2 * torch.sigmoid(o) - 1 if self.bounded else o
            return out
        mean, log_scale = o.chunk(2, dim=1)
        logvar = 2 * log_scale if self.scale == "log_sigma" else log_scale
        out.update(mean=mean, logvar=logvar)
        out["z"] = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar) if sample else mean
        return out


def build_encoder(cfg, spec: Field, z_dim: int, heads: dict[str, int] | None = None) -> Encoder:
    """model.encoder: {arch: <a discriminator body>, kind: deterministic | gaussian, bounded, scale, ...the
    body's keys}."""
    params = _params(cfg)
    kind, bounded = params.pop("kind", "deterministic"), bool(params.pop("bounded", False))
    scale = str(params.pop("scale", "log_var"))
    body = _build(DISCRIMINATORS, "encoder", params, spec)
    return Encoder(body, z_dim, kind, heads, bounded, scale)


class JointCritic(nn.Module):
    """D(x, z) of ALI / BiGAN: x through a registered body, z through an MLP, the two feature vectors joined
    by an MLP to one logit. `dropout` applies to D(x)'s output features, to every layer of the z path and
    of the joint MLP (ALI's appendix puts it in every layer; inside a conv body there is none here). BiGAN's D
    adds a linear map of z to its second layer, which is this with z_hidden=[] (z joins as it is) and
    joint_norm=batch. The layers here follow the x body's init and `affine`; `zero_head`: the logit layer
    starts at zero (BiGAN's code)."""

    def __init__(
        self,
        spec: Field,
        z_dim: int,
        x_body: dict,
        z_hidden=(512,),
        joint_hidden=(1024,),
        dropout: float = 0.0,
        leak: float = 0.2,
        joint_norm: str = "none",
        zero_head: bool = False,
    ):
        super().__init__()
        x_body = dict(x_body)
        self.x_net = _build(DISCRIMINATORS, "discriminator", x_body, spec)
        affine = getattr(self.x_net, "affine", True)
        self.drop_x = nn.Dropout(dropout) if dropout else nn.Identity()
        self.z_net = _mlp([z_dim, *z_hidden], leak, dropout, affine=affine)
        z_out = z_hidden[-1] if z_hidden else z_dim
        self.joint = _mlp([self.x_net.feature_dim + z_out, *joint_hidden], leak, dropout, joint_norm, affine)
        self.out = nn.Linear(joint_hidden[-1] if joint_hidden else self.x_net.feature_dim + z_out, 1, bias=affine)
        init = getattr(self.x_net, "init_head", None)
        if init is not None:
            for m in (self.z_net, self.joint, self.out):
                init(m)
        if zero_head:
            nn.init.zeros_(self.out.weight)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.drop_x(self.x_net(x)), self.z_net(z)], 1)
        return self.out(self.joint(h)).flatten()


def _mlp(sizes: list[int], leak: float, dropout: float, norm: str = "none", affine: bool = True) -> nn.Module:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [
            nn.Linear(a, b, bias=affine and norm == "none"),
            norm_layer(norm, b, False, affine),
            nn.LeakyReLU(leak),
        ]
        if dropout:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def latent_field(z_dim: int) -> Field:
    """The Field of a latent code, for networks that judge codes (AAE's D on z)."""
    return Field("points", (z_dim,))
