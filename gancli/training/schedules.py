"""Learning-rate schedules as a function of the generator step (the trainer's clock).

`optimizer.lr_schedule` picks one; the trainer applies it to every optimizer an algorithm owns.
"""

from __future__ import annotations

from typing import Callable

import torch

from gancli.errors import GanError


def constant(total: int, start: float) -> Callable[[int], float]:
    return lambda step: 1.0


def linear_decay(total: int, start: float) -> Callable[[int], float]:
    """Constant until `start`·total steps, then linearly to 0 at the last step (pix2pix, CycleGAN)."""
    begin = int(start * total)
    span = max(1, total - begin)
    return lambda step: 1.0 if step < begin else max(0.0, 1.0 - (step - begin) / span)


SCHEDULES = {"constant": constant, "linear_decay": linear_decay}


def build_schedulers(optimizers: dict[str, torch.optim.Optimizer], name: str, start: float,
                     total: int) -> dict[str, torch.optim.lr_scheduler.LambdaLR]:
    if name not in SCHEDULES:
        raise GanError(f"optimizer.lr_schedule='{name}' is not one of: {', '.join(SCHEDULES)}.")
    factor = SCHEDULES[name](total, float(start))
    return {k: torch.optim.lr_scheduler.LambdaLR(o, factor) for k, o in optimizers.items()}
