"""Exponential moving average of networks' weights (Karras et al.; Yazıcı et al.): smoother samples."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn


class EMA:
    """Keeps an averaged, eval-mode copy of each named network; buffers (BN statistics) are copied."""

    def __init__(self, nets: dict[str, nn.Module], decay: float, start: int = 0):
        if not 0.0 < decay < 1.0:
            from gancli.errors import GanError

            raise GanError(f"trainer.ema={decay} must be a decay in (0, 1), e.g. 0.999, or null for off.")
        self.decay, self.start = float(decay), int(start)
        self.copies = {k: copy.deepcopy(m).eval().requires_grad_(False) for k, m in nets.items()}

    @torch.no_grad()
    def update(self, nets: dict[str, nn.Module], step: int) -> None:
        weight = 1.0 if step <= self.start else 1.0 - self.decay  # before `start`: plain copy
        for k, avg in self.copies.items():
            src = nets[k]
            ema_p = list(avg.parameters())
            torch._foreach_lerp_(ema_p, [p.detach() for p in src.parameters()], weight)
            for b_avg, b in zip(avg.buffers(), src.buffers()):
                b_avg.copy_(b)

    def state_dict(self) -> dict:
        return {k: m.state_dict() for k, m in self.copies.items()}

    def load_state_dict(self, state: dict) -> None:
        for k, m in self.copies.items():
            m.load_state_dict(state[k])
