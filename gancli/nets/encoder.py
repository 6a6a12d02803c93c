"""Encoders x → z and the joint discriminator D(x, z) of ALI / BiGAN.

An encoder is any registered discriminator body (sample → features) with a linear head: deterministic
(z = head(h)), or Gaussian (head gives μ and log σ², z = μ + σ·ε, reparameterised so gradients reach μ and
σ); `bounded`: z = 2·sigmoid(head(h)) − 1, inside the U(−1, 1) prior's cube (BiGAN's code). Reusing the D
bodies means every architecture table (MLP, DCGAN convs) serves as an encoder too.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from gancli.core.errors import GanError
from gancli.data.base import Field
from gancli.nets.builders import DISCRIMINATORS, _build, _params
from gancli.nets.layers import norm_layer

ENCODER_KINDS = ("deterministic", "gaussian")


class Encoder(nn.Module):
    """x → z (B, z_dim); `heads` adds named outputs beside z from the same features (AAE's categorical y)."""

    def __init__(
        self,
        body: nn.Module,
        z_dim: int,
        kind: str = "deterministic",
        heads: dict[str, int] | None = None,
        bounded: bool = False,
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
        self.body, self.z_dim, self.kind = body, z_dim, kind
        self.out = nn.Linear(body.feature_dim, z_dim * (2 if kind == "gaussian" else 1))
        self.heads = nn.ModuleDict({k: nn.Linear(body.feature_dim, n) for k, n in (heads or {}).items()})

    def forward(self, x: torch.Tensor, sample: bool = True) -> torch.Tensor:
        return self.encode(x, sample)["z"]

    def encode(self, x: torch.Tensor, sample: bool = True) -> dict[str, torch.Tensor]:
        """{"z", and "mean", "logvar" for a Gaussian encoder, and each head's logits}; sample=False: z = μ."""
        h = self.body(x)
        out = {k: head(h) for k, head in self.heads.items()}
        o = self.out(h)
        if self.kind == "deterministic":
            out["z"] = 2 * torch.sigmoid(o) - 1 if self.bounded else o
            return out
        mean, logvar = o.chunk(2, dim=1)
        out.update(mean=mean, logvar=logvar)
        out["z"] = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar) if sample else mean
        return out


def build_encoder(cfg, spec: Field, z_dim: int, heads: dict[str, int] | None = None) -> Encoder:
    """model.encoder: {arch: <a discriminator body>, kind: deterministic | gaussian, ...the body's keys}."""
    params = _params(cfg)
    kind, bounded = params.pop("kind", "deterministic"), bool(params.pop("bounded", False))
    body = _build(DISCRIMINATORS, "encoder", params, spec)
    return Encoder(body, z_dim, kind, heads, bounded)


class JointCritic(nn.Module):
    """D(x, z) of ALI / BiGAN: x through a registered body, z through an MLP, the two feature vectors joined
    by an MLP to one logit. `dropout` applies to D(x)'s output features, to every layer of the z path and
    of the joint MLP (ALI's appendix puts it in every layer; inside a conv body there is none here). BiGAN's D
    adds a linear map of z to its second layer, which is this with z_hidden=[] (z joins as it is) and
    joint_norm=batch."""

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
    ):
        super().__init__()
        x_body = dict(x_body)
        self.x_net = _build(DISCRIMINATORS, "discriminator", x_body, spec)
        self.drop_x = nn.Dropout(dropout) if dropout else nn.Identity()
        self.z_net = _mlp([z_dim, *z_hidden], leak, dropout)
        z_out = z_hidden[-1] if z_hidden else z_dim
        self.joint = _mlp([self.x_net.feature_dim + z_out, *joint_hidden], leak, dropout, joint_norm)
        self.out = nn.Linear(joint_hidden[-1] if joint_hidden else self.x_net.feature_dim + z_out, 1)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.drop_x(self.x_net(x)), self.z_net(z)], 1)
        return self.out(self.joint(h)).flatten()


def _mlp(sizes: list[int], leak: float, dropout: float, norm: str = "none") -> nn.Module:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b, bias=norm == "none"), norm_layer(norm, b, False), nn.LeakyReLU(leak)]
        if dropout:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def latent_field(z_dim: int) -> Field:
    """The Field of a latent code, for networks that judge codes (AAE's D on z)."""
    return Field("points", (z_dim,))
