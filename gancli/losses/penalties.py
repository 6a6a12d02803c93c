"""Regularisers for critics: the WGAN-GP gradient penalty, the R1 penalty and WGAN weight clipping."""

from __future__ import annotations

import contextlib
from typing import Callable

import torch
import torch.nn as nn


def input_gradient(logits: torch.Tensor, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """∇ₓ Σ D(x) per sample, flattened to (B, -1), kept in the graph so a penalty on it trains D.
    `scale`: the AMP loss scale as a tensor (fp16), so this inner gradient does not underflow."""
    out = logits.float().sum()
    if scale is not None:
        out = out * scale
    (grad,) = torch.autograd.grad(out, x, create_graph=True)
    grad = grad.float().flatten(1)
    return grad / scale if scale is not None else grad


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     scale: torch.Tensor | None = None, autocast=contextlib.nullcontext) -> torch.Tensor:
    """E[(‖∇D(x̂)‖₂ − 1)²] with x̂ = εx + (1 − ε)G(z), ε ~ U[0, 1] per sample (Gulrajani et al.).

    `scale`: the AMP loss scale (see `input_gradient`);
    `autocast`: the precision context for the critic's forward only (the inner backward runs outside it).
    """
    eps = torch.rand([real.shape[0]] + [1] * (real.dim() - 1), device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    with autocast():
        logits = critic(x_hat)
    grad = input_gradient(logits, x_hat, scale)
    return ((grad.norm(2, dim=1) - 1.0) ** 2).mean()


def r1_penalty(d_real: torch.Tensor, real: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """E‖∇ₓD(x)‖² on real data (Mescheder et al. 2018), from the D forward the loss already ran: `real`
    must have been given `requires_grad_(True)` before it. Penalising D's slope on the data makes the
    game converge locally instead of circling it; R1 does not touch fakes. `scale` as above."""
    return input_gradient(d_real, real, scale).pow(2).sum(1).mean()


@torch.no_grad()
def clip_weights(module: nn.Module, c: float) -> None:
    """Clamp every parameter of the critic to [−c, c] (Arjovsky et al.)."""
    for p in module.parameters():
        p.clamp_(-c, c)
