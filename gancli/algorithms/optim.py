"""Optimizers by name. An algorithm asks for one per role ("g", "d") from the `optimizer` config."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from omegaconf import OmegaConf

from gancli.core.errors import GanError

SCHEDULE_KEYS = ("lr_schedule", "lr_decay_start", "lr_final")
SHARED_KEYS = (*SCHEDULE_KEYS, "clip_norm")  # a separate `d` optimizer (RGAN's) keeps these
OPTIMIZERS = {
    "adam": (torch.optim.Adam, ("betas", "eps", "weight_decay")),
    "adamw": (torch.optim.AdamW, ("betas", "eps", "weight_decay")),
    "rmsprop": (torch.optim.RMSprop, ("alpha", "eps", "weight_decay", "momentum")),
    "sgd": (torch.optim.SGD, ("momentum", "weight_decay", "nesterov")),
}


def lazy_ratio(every: int) -> float:
    """StyleGAN2's mb_ratio: a network regularised in a separate step every k iterations takes k + 1
    optimizer steps per k iterations, so its rate is scaled by k / (k + 1) and its betas raised to that
    power (stylegan2-ada-pytorch, training_loop.py), keeping the per-iteration step and averaging the same."""
    return every / (every + 1) if every > 1 else 1.0


def build_optimizer(cfg, params: Iterable[torch.nn.Parameter], role: str, lazy_every: int = 1) -> torch.optim.Optimizer:
    """role "d" uses `lr_d` (TTUR) when the config has it, and the whole optimizer under `d` when there is one
    (RGAN: Adam for G, SGD for D); everything else is shared. `lazy_every` > 1: the network also takes a
    lazy regularisation step every that many updates (see `lazy_ratio`). `clip_norm` (null: off) is kept on
    the optimizer as `clip_norm`: `Precision.step` rescales its gradients to that global norm at most before
    every step (the AAE reproduction's 5)."""
    c = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
    own = c.pop("d", None)
    if role == "d" and own:
        c = {**{k: v for k, v in c.items() if k in SHARED_KEYS}, **own}
    name = c.pop("name")
    if name not in OPTIMIZERS:
        raise GanError(f"unknown optimizer '{name}'; choose one of: {', '.join(OPTIMIZERS)}.")
    cls, allowed = OPTIMIZERS[name]
    lr = c.pop("lr")
    lr_d = c.pop("lr_d", None)
    for key in SCHEDULE_KEYS:  # applied by the trainer (it owns the clock)
        c.pop(key, None)
    clip = c.pop("clip_norm", None)
    if role == "d" and lr_d is not None:
        lr = lr_d
    unknown = sorted(set(c) - set(allowed))
    if unknown:
        raise GanError(
            f"optimizer '{name}' does not take {', '.join(unknown)}; it takes lr, lr_d, {', '.join(SHARED_KEYS + allowed)}."
        )
    ratio = lazy_ratio(lazy_every)
    lr = lr * ratio
    if "betas" in c:
        c["betas"] = tuple(float(b) ** ratio for b in c["betas"])
    # foreach: one fused kernel launch per parameter group instead of one per tensor
    optimizer = cls(params, lr=lr, foreach=True, **c)
    optimizer.clip_norm = float(clip) if clip else None
    return optimizer
