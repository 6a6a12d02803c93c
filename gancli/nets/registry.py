"""Architecture tables and the config → module builders."""

from __future__ import annotations

from typing import Callable

import torch.nn as nn
from omegaconf import OmegaConf

from gancli.data.base import DataSpec
from gancli.errors import GanError
from gancli.registry import Registry

GENERATORS: Registry[Callable[..., nn.Module]] = Registry("generator arch")
DISCRIMINATORS: Registry[Callable[..., nn.Module]] = Registry("discriminator arch")


def _build(table: Registry, role: str, cfg, spec: DataSpec, **extra) -> nn.Module:
    params = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
    arch = params.pop("arch")
    try:
        return table.get(arch)(spec, **extra, **params)
    except TypeError as exc:
        raise GanError(f"{role} arch '{arch}': {exc}. Check the keys under model.{role}.") from None


def build_generator(cfg, spec: DataSpec, z_dim: int) -> nn.Module:
    return _build(GENERATORS, "generator", cfg, spec, z_dim=z_dim)


def build_discriminator(cfg, spec: DataSpec) -> nn.Module:
    return _build(DISCRIMINATORS, "discriminator", cfg, spec)
