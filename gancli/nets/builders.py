"""Architecture tables and the config → module builders.

Generator builders map (B, z_dim) → (B, *spec.shape). Discriminator builders are *bodies*
(sample → features (B, feature_dim)); `build_discriminator` wraps one in a `Critic` with its heads.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch.nn as nn
from omegaconf import OmegaConf

from gancli.core.errors import GanError
from gancli.core.registry import Registry
from gancli.data.base import Field

GENERATORS: Registry[Callable[..., nn.Module]] = Registry("generator arch")
DISCRIMINATORS: Registry[Callable[..., nn.Module]] = Registry("discriminator arch")


def _params(cfg) -> dict:
    return OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)


def _build(table: Registry, role: str, params: dict, spec: Field, **extra) -> nn.Module:
    params = dict(params)
    arch = params.pop("arch")
    try:
        return table.get(arch)(spec, **extra, **params)
    except TypeError as exc:
        raise GanError(f"{role} arch '{arch}': {exc}. Check the keys under model.{role}.") from None


def build_generator(
    cfg, spec: Field, z_dim: int, num_classes: int = 0, condition: str = "none", embed_dim: int = 0
) -> nn.Module:
    """condition: none | onehot | embedding (then G takes (z, labels))."""
    params = _params(cfg)
    if condition == "none":
        return _build(GENERATORS, "generator", params, spec, z_dim=z_dim)
    from gancli.nets.conditional import ConditionalGenerator

    return ConditionalGenerator(
        lambda d: _build(GENERATORS, "generator", params, spec, z_dim=d),
        z_dim,
        num_classes,
        condition,
        embed_dim or num_classes,
    )


def build_discriminator(
    cfg,
    spec: Field,
    num_classes: int = 0,
    condition: str = "none",
    heads: dict[str, int] | None = None,
    minibatch_std: int = 0,
    head_hidden: int = 0,
    pack: int = 1,
    head_norm: str = "none",
) -> nn.Module:
    """A Critic: the configured body, the adversarial head, optional class conditioning (concat |
    projection), auxiliary heads {name: outputs}, minibatch std (group size, 0 = off) and packing
    (D judges `pack` samples at once); `head_hidden`/`head_norm`: the heads' hidden layer and its norm."""
    from gancli.nets.critic import Critic

    params = _params(cfg)
    body_spec = spec
    extra = num_classes if condition == "concat" else 0  # the one-hot label as extra input channels / features
    if extra or pack > 1:
        flat = getattr(DISCRIMINATORS.get(params["arch"]), "flat_input", False)
        shape = (math.prod(spec.shape) * pack + extra,) if flat else (spec.shape[0] * pack + extra, *spec.shape[1:])
        body_spec = dataclasses.replace(spec, shape=shape)
    body = _build(DISCRIMINATORS, "discriminator", params, body_spec)
    return Critic(
        body,
        num_classes,
        condition,
        heads,
        minibatch_std,
        spectral=params.get("norm") == "spectral",
        head_hidden=head_hidden,
        pack=pack,
        head_norm=head_norm,
    )
