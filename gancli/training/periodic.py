"""The loop's periodic work as callbacks, and `build_callbacks`: the one place that lists every callback a run
calls. After each step the trainer writes the log line when one is due (callbacks see its means first, through
on_log: the NaN guard stops or restores before a NaN is logged), then calls the callbacks due, in this order:

    trainer.sample_every   Grids        samples/step_XXXXXXX.png                           rank 0
    trainer.nan            NanGuard     the losses not yet logged, at checkpoint steps     every rank
    trainer.ckpt_every     Checkpoints  checkpoints/step_XXXXXXX.pt + last.pt              every rank
    trainer.callbacks.*    the user's, in the config's order                               rank 0
    eval                   Evaluate (eval_callback.py), when eval.every > 0                rank 0

The guard comes right before the checkpoint, so NaN weights never reach the disk. Grids, guard and checkpoints
are essential (a failure ends the run, as a lost checkpoint must not pass unnoticed) and keep no state.
Evaluation is an ordinary callback: it scores rank 0's model, a failure is reported and the run goes on, and
its best score travels in checkpoints under `eval`, as the user's callbacks' states do under their names.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from gancli.core.checkpoint import load_checkpoint
from gancli.core.errors import GanError
from gancli.training.callbacks import Callback, StepUndone, user_callbacks

if TYPE_CHECKING:
    from gancli.algorithms.base import Algorithm
    from gancli.training.trainer import Trainer

log = logging.getLogger("gancli")


def build_callbacks(config: dict, algorithm: Algorithm) -> dict[str, Callback]:
    """Name → callback, in the order they run (see above), from the run's resolved config. A key that a config
    saved by an older gancli lacks (trainer.nan, trainer.callbacks, eval) means what that version did."""
    t = config["trainer"]
    own = {
        "trainer.sample_every": Grids(t["sample_every"]),
        "trainer.nan": NanGuard(t.get("nan", "stop"), t["ckpt_every"]),
        "trainer.ckpt_every": Checkpoints(t["ckpt_every"]),
    }
    user = user_callbacks(t.get("callbacks"))
    last = {}
    settings = config.get("eval")
    if settings is not None and int(settings["every"]) > 0:
        from gancli.training.eval_callback import Evaluate  # imports the metrics: only runs that evaluate pay

        last["eval"] = Evaluate(settings, config["dataset"], algorithm)
    for name in user:
        if name in own or name in last:
            raise GanError(f"trainer.callbacks.{name}: the name is taken by gancli's own '{name}' callback.")
    return {**own, **user, **last}


class LoopWork(Callback):
    """gancli's own work at a cadence: essential, stateless, and never at the last step, whose grid and checkpoint
    Trainer.fit writes after the loop (an interrupted run's too)."""

    essential = True

    def due(self, step: int, total: int) -> bool:
        return super().due(step, total) and step < total

    def state_dict(self) -> None:
        return None


class Grids(LoopWork):
    """trainer.sample_every: a grid of the fixed noise batch (Trainer.save_grid draws on rank 0 only)."""

    def on_interval(self, trainer: Trainer) -> None:
        trainer.save_grid(trainer.run_dir / "samples" / f"step_{trainer.step:07d}.png")


class Checkpoints(LoopWork):
    """trainer.ckpt_every: the rotated checkpoint and last.pt."""

    every_rank = True  # every rank's RNG state goes into the file, and the ranks meet at a barrier after it

    def on_interval(self, trainer: Trainer) -> None:
        trainer.save_checkpoint()


class NanGuard(LoopWork):
    """trainer.nan: a NaN / Inf loss stops the run, naming it (stop: the last good checkpoint stays), or restores
    the last checkpoint at half the learning rates and goes on (skip: at most 3 times in a row). It checks every
    log window's means before they are written, and at checkpoint steps the sums of the steps not yet logged."""

    every_rank = True  # the means are taken over ranks, and every rank must restore the same checkpoint

    def __init__(self, policy: str, ckpt_every: int):
        super().__init__(ckpt_every)
        self.policy, self.restores = str(policy), 0

    def on_log(self, trainer: Trainer, scalars: dict[str, float]) -> None:
        if self._restored(trainer, scalars):
            raise StepUndone

    def on_interval(self, trainer: Trainer) -> None:
        window = trainer.window
        if window.acc and self._restored(trainer, window.sums()):
            window.drop()
            raise StepUndone

    def _restored(self, trainer: Trainer, scalars: dict[str, float]) -> bool:
        """False if every scalar is finite; otherwise raise (stop), or restore and return True (skip)."""
        bad = nonfinite(scalars)
        if not bad:
            self.restores = 0
            return False
        step, last = trainer.step, trainer.checkpoints.last
        if self.policy != "skip" or not last.is_file() or self.restores >= 3:
            raise divergence(trainer, bad, scalars)
        self.restores += 1
        trainer.load_state_dict(load_checkpoint(last))
        for opt in trainer.algorithm.optimizers.values():
            for group in opt.param_groups:
                group["initial_lr"] = group.get("initial_lr", group["lr"]) * 0.5
                group["lr"] *= 0.5
        trainer.metrics.rewind(trainer.step)
        log.warning(
            "%s became %s by step %d: restored step %d and halved the learning rates (trainer.nan=skip)",
            bad[0],
            scalars[bad[0]],
            step,
            trainer.step,
        )
        return True


def nonfinite(scalars: dict[str, float]) -> list[str]:
    return [k for k, v in scalars.items() if not math.isfinite(v)]


def divergence(trainer: Trainer, bad: list[str], scalars: dict[str, float]) -> GanError:
    """The error that stops a diverged run: which loss, when, what is left and what to try."""
    last = trainer.checkpoints.last
    kept = (
        f"The last good checkpoint, {last} (step {load_checkpoint(last)['step']}), is intact."
        if last.is_file()
        else "No checkpoint was written before it."
    )
    return GanError(
        f"{bad[0]} became {scalars[bad[0]]} by step {trainer.step} (logged over the last "
        f"{trainer.log_every} steps{', with ' + ', '.join(bad[1:]) if bad[1:] else ''}): training "
        f"diverged and stopped. {kept} Train again with a lower optimizer.lr, or with "
        "trainer.nan=skip, which restores the last checkpoint and goes on at half the learning rate."
    )
