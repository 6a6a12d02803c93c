"""Trainer callbacks: periodic work beside training (evaluate, log extra figures, write a report), each with
its own cadence, added from config without touching the loop:

    trainer:
      callbacks:
        fid:                                   # any name: it labels the callback's logs and its state
          _target_: my_pkg.callbacks.EvalFID   # a Callback subclass, built with hydra.utils.instantiate
          every: 1000                          # G steps between calls of on_interval (0: only at the end)
          n: 5000                              # the rest: its own arguments

A callback's failure is reported (the log, the run's summary) and training goes on; its state (a best
score so far, say) travels in the checkpoint under its name. gancli's own periodic work (grids, the NaN
guard, checkpoints, evaluation) is callbacks too; training/periodic.py builds the whole list, in order.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from gancli.core.errors import GanError

if TYPE_CHECKING:
    from gancli.training.trainer import Trainer

log = logging.getLogger("gancli")


class StepUndone(Exception):
    """Raised by an essential callback that put the run back to an earlier step (trainer.nan=skip): the rest of
    the step's work (logging, later callbacks, the stop check) is skipped, as if the step had not happened."""


class Callback:
    """Override what you need. Scalars returned by on_interval go to metrics.jsonl and TensorBoard at that step.

    Two class flags set gancli's own callbacks (training/periodic.py) apart; a user callback keeps the defaults:
    `every_rank`: under torchrun it runs on every rank, not on rank 0 alone, because its work is collective (a
    checkpoint gathers every rank's RNG state and waits at a barrier; the NaN guard restores every rank).
    `essential`: its exceptions end the run (the NaN guard stops a diverged run this way, and a checkpoint that
    failed unnoticed would lose work); a user callback's failure is only reported, so an extra never stops training.
    """

    every_rank = False
    essential = False

    def __init__(self, every: int = 0):
        if int(every) < 0:
            raise GanError(f"a callback's every={every} must be ≥ 0 (0: only at the end of training).")
        self.every = int(every)

    def due(self, step: int, total: int) -> bool:
        """Whether on_interval runs after `step` (of `total`)."""
        return bool(self.every) and step % self.every == 0

    def on_fit_start(self, trainer: Trainer) -> None:
        pass

    def on_log(self, trainer: Trainer, scalars: dict[str, float]) -> None:
        """At each log step, the means of the logged scalars over the window, before they are written."""

    def on_interval(self, trainer: Trainer) -> dict[str, float] | None:
        return None

    def on_fit_end(self, trainer: Trainer, summary: dict) -> None:
        pass

    def state_dict(self) -> dict | None:
        """What the checkpoint keeps under the callback's name; None: nothing (no entry at all)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def user_callbacks(specs: dict | None) -> dict[str, Callback]:
    """trainer.callbacks (name → {_target_, every, ...}) → Callback objects; a bad entry is one GanError."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    callbacks = {}
    for name, spec in (specs or {}).items():
        where = f"trainer.callbacks.{name}"
        if not isinstance(spec, dict) or "_target_" not in spec:
            raise GanError(
                f"{where} needs a _target_: the import path of a gancli.training.callbacks.Callback "
                f"subclass (e.g. +{where}._target_=my_pkg.MyCallback)."
            )
        try:
            cb = instantiate(spec)
        except InstantiationException as exc:
            reason = str(exc).splitlines()[0].split(", set env var HYDRA_FULL_ERROR")[0]
            raise GanError(f"{where}: cannot build {spec['_target_']}: {reason}.") from None
        if not isinstance(cb, Callback):
            raise GanError(f"{where}: {spec['_target_']} is not a gancli.training.callbacks.Callback.")
        callbacks[name] = cb
    return callbacks


class CallbackRunner:
    """Calls the callbacks in their order at their cadences. A failure of an essential one is raised; any
    other's is logged and recorded, and the run goes on."""

    def __init__(self, callbacks: dict[str, Callback]):
        self.callbacks = callbacks
        self.errors: list[str] = []
        self.scalars: dict[str, float] = {}  # the latest value of each scalar a callback returned

    def for_rank(self, main: bool) -> CallbackRunner:
        """The callbacks that run in this process: all on rank 0, the every_rank ones elsewhere."""
        return self if main else CallbackRunner({n: cb for n, cb in self.callbacks.items() if cb.every_rank})

    def _call(self, name: str, hook: str, trainer: Trainer, *args):
        callback = self.callbacks[name]
        method = getattr(callback, hook)
        args = args if hook in ("state_dict", "load_state_dict") else (trainer, *args)
        if callback.essential:
            return method(*args)
        try:
            return method(*args)
        except Exception as exc:  # a callback's bug or a user error: reported, the run goes on
            message = f"callback '{name}' failed at step {trainer.step} ({hook}): {type(exc).__name__}: {exc}"
            log.error("%s; training continues", message)
            self.errors.append(message)
            return None

    def start(self, trainer: Trainer) -> None:
        for name in self.callbacks:
            self._call(name, "on_fit_start", trainer)

    def log(self, trainer: Trainer, scalars: dict[str, float]) -> None:
        for name in self.callbacks:
            self._call(name, "on_log", trainer, scalars)

    def interval(self, trainer: Trainer, step: int) -> dict[str, float]:
        """Scalars from the callbacks due at `step` (each prefixed with its callback's name)."""
        out: dict[str, float] = {}
        for name, cb in self.callbacks.items():
            if cb.due(step, trainer.total):
                scalars = self._call(name, "on_interval", trainer) or {}
                out.update({f"{name}/{k}": float(v) for k, v in scalars.items()})
        self.scalars.update(out)
        return out

    def end(self, trainer: Trainer, summary: dict) -> None:
        for name in self.callbacks:
            self._call(name, "on_fit_end", trainer, summary)

    def state_dict(self, trainer: Trainer) -> dict:
        """Each callback's state; one that fails to give it is reported and left out of the checkpoint."""
        states = {}
        for name in self.callbacks:
            state = self._call(name, "state_dict", trainer)
            if state is not None:
                states[name] = state
        return states

    def load_state_dict(self, state: dict, trainer: Trainer) -> None:
        for name in self.callbacks:
            if name in state:
                self._call(name, "load_state_dict", trainer, state[name])
