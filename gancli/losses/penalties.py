"""Regularisers for critics: the WGAN-GP gradient penalty, the R1 penalty and WGAN weight clipping.

A critic's input may be one tensor or a tuple of them (a joint pair (x, z), as ALI / BiGAN's D sees):
the gradient is then taken with respect to every part, and its norm is over all of them together.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
import torch.nn as nn

from gancli.core.eager import eager

Inputs = torch.Tensor | tuple[torch.Tensor, ...]


def _parts(x: Inputs) -> tuple[torch.Tensor, ...]:
    return x if isinstance(x, tuple) else (x,)


@eager  # create_graph: a compiled graph cannot be differentiated again
def input_gradient(logits: torch.Tensor, x: Inputs, scale: torch.Tensor | None = None) -> torch.Tensor:
    """∇ₓ Σ D(x) per sample, flattened to (B, -1) (the parts of a tuple side by side), kept in the graph so
    a penalty on it trains D. `scale`: the AMP loss scale as a tensor (fp16), so this inner gradient does
    not underflow."""
    out = logits.float().sum()
    if scale is not None:
        out = out * scale
    grads = torch.autograd.grad(out, _parts(x), create_graph=True)
    grad = torch.cat([g.float().flatten(1) for g in grads], 1)
    return grad / scale if scale is not None else grad


@eager  # the critic's forward at x̂ is differentiated twice
def gradient_penalty(
    critic: Callable[[Inputs], torch.Tensor],
    real: Inputs,
    fake: Inputs,
    scale: torch.Tensor | None = None,
    autocast=contextlib.nullcontext,
) -> torch.Tensor:
    """E[(‖∇D(x̂)‖₂ − 1)²] with x̂ = εx + (1 − ε)G(z), ε ~ U[0, 1] per sample (Gulrajani et al.); for a
    joint input, one ε per sample for all its parts.

    `scale`: the AMP loss scale (see `input_gradient`);
    `autocast`: the precision context for the critic's forward only (the inner backward runs outside it).
    """
    reals, fakes = _parts(real), _parts(fake)
    first = reals[0]
    eps = torch.rand(first.shape[0], device=first.device, dtype=first.dtype)
    x_hat = tuple(
        (e * r.detach() + (1 - e) * f.detach()).requires_grad_(True)
        for r, f in zip(reals, fakes, strict=True)
        for e in [eps.to(r.dtype).view(-1, *[1] * (r.dim() - 1))]
    )
    with autocast():
        logits = critic(x_hat if isinstance(real, tuple) else x_hat[0])
    grad = input_gradient(logits, x_hat, scale)
    return ((grad.norm(2, dim=1) - 1.0) ** 2).mean()


def r1_penalty(d_real: torch.Tensor, real: Inputs, scale: torch.Tensor | None = None) -> torch.Tensor:
    """E‖∇ₓD(x)‖² on real data (Mescheder et al. 2018), from the D forward the loss already ran: `real`
    (each part of it) must have been given `requires_grad_(True)` before it. Penalising D's slope on the data makes the
    game converge locally instead of circling it; R1 does not touch fakes. `scale` as above."""
    return input_gradient(d_real, real, scale).pow(2).sum(1).mean()


def zero_term(*outputs: torch.Tensor) -> torch.Tensor:
    """0 · Σ outputs, to add to a lazy regulariser's loss: it changes nothing but reaches every parameter
    behind `outputs`, so each gets a gradient (zero where the penalty does not depend on it) and its
    optimizer steps it, Adam's momentum moving it on, instead of skipping it. stylegan2-ada-pytorch's
    Dreg (`real_logits * 0`) and Greg (`gen_img[:, 0, 0, 0] * 0`) phases do this: R1 never reaches D's
    output bias, nor the path length G's ToRGB biases. Summed in float32, so an fp16 sum cannot overflow
    to inf (inf · 0 is NaN)."""
    return sum(o.float().sum() * 0 for o in outputs)


@torch.no_grad()
def clip_weights(module: nn.Module, c: float) -> None:
    """Clamp every parameter of the critic to [−c, c] (Arjovsky et al.)."""
    for p in module.parameters():
        p.clamp_(-c, c)
