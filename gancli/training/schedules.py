"""Learning-rate schedules as a function of the generator step (the trainer's clock).

`optimizer.lr_schedule` picks one; the trainer applies it to every optimizer the algorithm owns at that
moment. It is stateless: the rate after step s is `initial_lr · factor(s)`, so optimizers an algorithm
rebuilds at a phase boundary follow the schedule at once, and a resumed run needs only its step. (The
numbers are those of torch's LambdaLR stepped once per G step.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

from gancli.core.errors import GanError


def constant(total: int, start: float, final: float = 0.0) -> Callable[[int], float]:
    return lambda step: 1.0


def linear_decay(total: int, start: float, final: float = 0.0) -> Callable[[int], float]:
    """Constant until `start`·total steps, then linearly to `final` (default 0) at the last step (pix2pix,
    CycleGAN)."""
    begin = int(start * total)
    span = max(1, total - begin)
    return lambda step: 1.0 if step < begin else max(final, 1.0 - (1.0 - final) * (step - begin) / span)


def exp_decay(total: int, start: float, final: float = 0.01) -> Callable[[int], float]:
    """Constant until `start`·total steps, then geometrically to `final` at the last step (BiGAN's code: 200
    epochs at the rate, then 200 down to 1 % of it, log-linearly)."""
    if not final > 0:
        raise GanError(f"optimizer.lr_schedule=exp_decay decays to optimizer.lr_final={final}, which must be > 0.")
    begin = int(start * total)
    span = max(1, total - begin)
    return lambda step: 1.0 if step < begin else math.exp(math.log(final) * min(1.0, (step - begin) / span))


SCHEDULES = {"constant": constant, "linear_decay": linear_decay, "exp_decay": exp_decay}


class LRSchedule:
    def __init__(self, name: str, start: float, total: int, final: float = 0.0):
        if name not in SCHEDULES:
            raise GanError(f"optimizer.lr_schedule='{name}' is not one of: {', '.join(SCHEDULES)}.")
        self.constant = name == "constant"
        self.factor = SCHEDULES[name](total, float(start), float(final))

    def apply(self, optimizers: Iterable[torch.optim.Optimizer], step: int) -> None:
        """Set each rate for the steps after `step` steps are done."""
        if self.constant:
            return
        f = self.factor(step)
        for opt in optimizers:
            for group in opt.param_groups:
                group["lr"] = group.setdefault("initial_lr", group["lr"]) * f
