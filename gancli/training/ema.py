"""Exponential moving average of networks' weights (Karras et al.; Yazıcı et al.): smoother samples.

BatchNorm statistics cannot be averaged like weights: the running mean and variance a live network
gathered describe *its* activations, not those of the averaged weights. Copying them (what the update
does) is exact only for networks without BatchNorm; `refresh_batch_norm` re-estimates them for the
averaged weights from fresh forward passes (BigGAN's "standing statistics") before the copy is used.

A ramp-up (StyleGAN2-ADA's `ema_rampup`) caps the average's half-life at a fraction of the steps it has
tracked, so the fast-moving weights of early training are forgotten quickly and a high decay (0.9999)
still gives a useful average a few thousand steps in. As in the reference, "tracked" counts the steps
before the current one (`ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)` runs before `cur_nimg`
advances), so the first tracked update is a plain copy. Counting in steps rather than images makes the
same setting mean the same thing at any batch size.

A family that grows (new layers at a phase boundary) calls for `rebind`: the averaged copy takes the new
structure, keeping the averages of every weight that is still there.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
import torch.nn as nn


class EMA:
    """Keeps an averaged, eval-mode copy of each named network; buffers are copied from the live nets."""

    def __init__(self, nets: dict[str, nn.Module], decay: float, start: int = 0, rampup: float | None = None):
        from gancli.core.errors import GanError

        if not 0.0 < decay < 1.0:
            raise GanError(f"trainer.ema={decay} must be a decay in (0, 1), e.g. 0.999, or null for off.")
        if rampup is not None and not rampup > 0.0:
            raise GanError(
                f"trainer.ema_rampup={rampup} must be a positive fraction of the steps tracked "
                "(StyleGAN2-ADA uses 0.05), or null for a constant decay."
            )
        self.decay, self.start = float(decay), int(start)
        self.rampup = None if rampup is None else float(rampup)
        self.copies = {k: copy.deepcopy(m).eval().requires_grad_(False) for k, m in nets.items()}

    def decay_at(self, step: int) -> float:
        """The decay of the update made after G step `step` (0-based: `step` steps came before it);
        constant without a ramp-up."""
        if self.rampup is None:
            return self.decay
        half_life = math.log(0.5) / math.log(self.decay)  # in steps
        return 0.5 ** (1.0 / max(min(half_life, self.rampup * (step - self.start)), 1e-8))

    @torch.no_grad()
    def update(self, nets: dict[str, nn.Module], step: int) -> None:
        """Average in the live nets after G step `step` (0-based). Before `start`: a plain copy."""
        weight = 1.0 if step < self.start else 1.0 - self.decay_at(step)
        for k, avg in self.copies.items():
            src = nets[k]
            ema_p = list(avg.parameters())
            torch._foreach_lerp_(ema_p, [p.detach() for p in src.parameters()], weight)
            for b_avg, b in zip(avg.buffers(), src.buffers()):
                b_avg.copy_(b)

    def rebind(self, nets: dict[str, nn.Module]) -> None:
        """After a phase change: each copy whose live network changed structure (or was replaced) becomes
        a fresh copy of it, with the averages of every entry whose name and shape are unchanged."""
        for k in list(self.copies):
            avg, live = self.copies[k], nets[k]
            old = avg.state_dict()
            if _layout(old) == _layout(live.state_dict()):
                continue
            fresh = copy.deepcopy(live).eval().requires_grad_(False)
            kept = {n: v for n, v in old.items() if n in fresh.state_dict() and fresh.state_dict()[n].shape == v.shape}
            fresh.load_state_dict(kept, strict=False)
            self.copies[k] = fresh

    def has_batch_norm(self) -> bool:
        return any(_tracking_batch_norms(m) for m in self.copies.values())

    @torch.no_grad()
    def refresh_batch_norm(self, forward: Callable[[dict[str, nn.Module]], object], batches: int) -> None:
        """Recompute the copies' BatchNorm running statistics as the plain average over `batches` calls of
        forward(copies), which should run the averaged networks on fresh inputs. Weights are untouched."""
        norms = [bn for m in self.copies.values() for bn in _tracking_batch_norms(m)]
        if not norms or batches <= 0:
            return
        momenta = [bn.momentum for bn in norms]
        for bn in norms:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over the refresh batches
            bn.train()
        try:
            for _ in range(batches):
                forward(self.copies)
        finally:
            for bn, momentum in zip(norms, momenta):
                bn.momentum = momentum
                bn.eval()

    def state_dict(self) -> dict:
        return {k: m.state_dict() for k, m in self.copies.items()}

    def load_state_dict(self, state: dict) -> None:
        for k, m in self.copies.items():
            m.load_state_dict(state[k])


def _layout(state: dict) -> list[tuple[str, tuple[int, ...]]]:
    return [(n, tuple(v.shape)) for n, v in state.items()]


def _tracking_batch_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
