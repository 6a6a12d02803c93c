"""The generic loop. It knows time — steps, phases, logs, signals — and calls the callbacks that do the work
at a cadence (grids, checkpoints, the NaN guard, evaluation, the user's: training/periodic.py lists them). It
knows nothing about any family: it talks to the `Algorithm` interface only.

Hot-path rules: no host synchronisation and no config look-ups per step. Losses come back as device
tensors and are summed on the device; they are read (one sync) every `log_every` steps.
"""

from __future__ import annotations

import logging
import time
import weakref
from pathlib import Path

import torch

from gancli.algorithms.base import Algorithm
from gancli.core.checkpoint import CheckpointDir
from gancli.core.errors import GanError
from gancli.data.base import DataSource
from gancli.training import rng
from gancli.training.callbacks import CallbackRunner, StepUndone
from gancli.training.distributed import SINGLE, World
from gancli.training.ema import EMA
from gancli.training.loggers import build_loggers
from gancli.training.metrics_log import LogWindow, MetricsLog, NullMetricsLog
from gancli.training.periodic import build_callbacks, divergence, nonfinite
from gancli.training.profiling import StepProfiler
from gancli.training.progress import TrainProgress
from gancli.training.schedules import LRSchedule
from gancli.training.signals import Deferred, StopOnSignal
from gancli.viz import save_panels

log = logging.getLogger("gancli")


class Trainer:
    def __init__(self, config: dict, algorithm: Algorithm, source: DataSource, run_dir: Path, world: World = SINGLE):
        """`config` is the run's resolved plain config, the one checkpoints carry: the trainer reads its `trainer`
        section (and the optimizer's schedule) itself. A key that a config saved by an older gancli lacks means
        what that version did."""
        t = config["trainer"]
        self.config, self.algorithm, self.source, self.world = config, algorithm, source, world
        self.run_dir, self.seed, self.step = Path(run_dir), int(config["seed"]), 0
        self.spec, self.device = source.spec, algorithm.device
        self.total, self.default_batch = int(t["steps"]), int(t["batch_size"])
        self.log_every, self.sample_n = max(1, int(t["log_every"])), int(t["sample_n"])
        self.progress_mode = t["progress"]
        self.channels_last, self.profile = bool(t["channels_last"]), bool(t.get("profile", False))
        self._set_speedups(t)
        self._prepared: weakref.WeakSet = weakref.WeakSet()
        algorithm.set_phase(algorithm.phase_at(0))
        self.stream = source.stream(self.batch_size, self.device, self.seed)
        if world.distributed:
            self.stream.shard(world.rank, world.size)
        self.ema, self.ema_bn_batches = self._build_ema(t)
        self._bn_refreshed_at: int | None = None
        opt = config["optimizer"]
        self.schedule = LRSchedule(
            opt.get("lr_schedule", "constant"), opt.get("lr_decay_start", 0.5), self.total, opt.get("lr_final", 0.0)
        )
        self.schedule.apply(algorithm.optimizers.values(), 0)
        if self.compile:
            self._compile_steps()
        self.checkpoints = CheckpointDir(self.run_dir / "checkpoints", t["keep"])
        self.reference = source.reference(algorithm.reference_size(self.sample_n))
        self.last_scalars: dict[str, float] = {}
        self.window, self.metrics = LogWindow(world), NullMetricsLog()  # fit's own, while it runs
        self.loggers = build_loggers(config) if world.main else []  # the `logger` group; started by fit
        self._prepare_nets()
        self.callbacks = CallbackRunner(build_callbacks(config, algorithm))

    def _set_speedups(self, t: dict) -> None:
        """trainer.sync_bn and trainer.compile, refused before any work where they cannot run."""
        self.sync_bn = bool(t.get("sync_bn", False))
        if self.sync_bn and self.world.distributed and self.device.type == "cpu":
            raise GanError(
                "trainer.sync_bn=true needs CUDA devices (PyTorch's SyncBatchNorm does not run on the "
                "CPU); use trainer.sync_bn=false, or train on GPUs."
            )
        mode = str(t["compile"]).lower()
        self.compile = mode != "false"
        self.compile_mode = None if mode in ("true", "false") else mode
        self.graphs = self.compile_mode == "reduce-overhead"  # CUDA graphs (a no-op on the CPU)
        blocker = self.algorithm.compile_blocker() if self.compile else None
        if blocker:
            raise GanError(f"trainer.compile=true cannot be combined with {blocker}; use trainer.compile=false.")

    def _build_ema(self, t: dict) -> tuple[EMA | None, int]:
        """trainer.ema over the networks the family names (ema_nets), and trainer.ema_bn_batches: 0 where the
        family cannot run its averaged networks (their BatchNorm statistics are then copied)."""
        algorithm, bn_batches = self.algorithm, int(t.get("ema_bn_batches", 0))
        if t["ema"] and not algorithm.ema_nets:
            log.warning(
                "trainer.ema is set, but %s declares no networks to average (ema_nets); no EMA is kept",
                type(algorithm).__name__,
            )
        if not (t["ema"] and algorithm.ema_nets):
            return None, bn_batches
        ema = EMA({k: algorithm.nets[k] for k in algorithm.ema_nets}, t["ema"], t["ema_start"], t.get("ema_rampup"))
        if bn_batches and ema.has_batch_norm() and type(algorithm).ema_forward is Algorithm.ema_forward:
            log.warning(
                "%s does not say how to run its averaged networks (ema_forward), so their BatchNorm "
                "statistics are copied from the live ones",
                type(algorithm).__name__,
            )
            bn_batches = 0
        return ema, bn_batches

    @property
    def batch_size(self) -> int:
        """The batch the stream serves in the current phase."""
        return self.algorithm.batch_size(self.algorithm.phase) or self.default_batch

    # -- phases -----------------------------------------------------------------------------------
    def _prepare_nets(self) -> None:
        """Memory format and compilation, once per network (new ones appear at phase boundaries). Under
        torchrun every rank then holds rank 0's weights (layers a phase adds were drawn per rank)."""
        for m in self.algorithm.nets.values():
            self.world.broadcast_module(m)
            if m in self._prepared:
                continue
            if self.sync_bn and self.world.distributed:  # in place: the optimizers keep the same parameters
                torch.nn.SyncBatchNorm.convert_sync_batchnorm(m)
            if self.channels_last:
                m.to(memory_format=torch.channels_last)
            if self.compile and not self.algorithm.step_functions:
                m.compile(mode=self.compile_mode)
            self._prepared.add(m)

    def _compile_steps(self) -> None:
        """trainer.compile for families that name their update functions: each is compiled whole (every
        network and loss term of the update in one graph, the optimizer step in another; CUDA graphs with
        mode reduce-overhead). A learning rate that changes every step keeps the optimizer step eager."""
        self.algorithm.precision.compile_optimizer = self.schedule.constant
        for name in self.algorithm.step_functions:
            setattr(self.algorithm, name, torch.compile(getattr(self.algorithm, name), mode=self.compile_mode))

    def enter_phase(self, phase: int) -> None:
        """The algorithm changes (networks, optimizers, batch size); everything the trainer keeps for it follows."""
        if not self.algorithm.set_phase(phase):
            return
        self.stream.set_batch_size(self.batch_size)
        if self.ema is not None:
            self.ema.rebind(self.algorithm.nets)
        self._prepare_nets()
        self.schedule.apply(self.algorithm.optimizers.values(), self.step)
        log.info(
            "step %d: phase %d%s", self.step, phase, f" ({self.algorithm.status()})" if self.algorithm.status() else ""
        )

    # -- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            **self.algorithm.state_dict(),
            "ema": self.ema.state_dict() if self.ema else {},
            "step": self.step,
            "config": self.config,
            "spec": self.spec.to_plain(),
            "data": self.stream.state_dict(),
            "rng": rng.capture(),
            "callbacks": self.callbacks.state_dict(self),
            "world_size": self.world.size,
        }

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.enter_phase(int(state.get("phase", 0)))
        self.algorithm.load_state_dict(state)
        if self.ema and state.get("ema"):
            self.ema.load_state_dict(state["ema"])
        self.stream.load_state_dict(state["data"])
        rng.restore(state["rank_rng"][self.world.rank] if self.world.distributed else state["rng"])
        self.schedule.apply(self.algorithm.optimizers.values(), self.step)
        self.callbacks.load_state_dict(state.get("callbacks", {}), self)

    def save_checkpoint(self, name: str | None = None) -> Path:
        """The rotated step_XXXXXXX.pt + last.pt, or (name) a named one beside them, e.g. best.pt (rank 0
        only: callbacks run there). Under torchrun every rank takes part in a rotated save, since each
        rank's RNG state goes into it, and rank 0 writes it."""
        if name is not None:
            return self._write(lambda state: self.checkpoints.save_named(state, name))
        rank_rng = self.world.gather(rng.capture()) if self.world.distributed else None
        path = self.checkpoints.last
        if self.world.main:
            path = self._write(lambda state: self.checkpoints.save(state, self.step), rank_rng)
        self.world.barrier()  # the file is whole before any rank may read it (trainer.nan=skip)
        return path

    def _write(self, save, rank_rng: list | None = None) -> Path:
        self.prepare_sampling()
        state = self.state_dict()
        if rank_rng is not None:
            state["rank_rng"] = rank_rng
        with Deferred():  # a signal now waits for the write to finish
            return save(state)

    def prepare_sampling(self) -> None:
        """Before the EMA copy is used or saved: BN statistics that match its averaged weights. The refresh
        noise and data come from their own generator and stream, seeded by (seed, step), so training's RNG
        streams and resumed runs are unaffected."""
        if (
            self.ema is None
            or not self.ema_bn_batches
            or self._bn_refreshed_at == self.step
            or not self.ema.has_batch_norm()
        ):
            return
        self._bn_refreshed_at = self.step
        key = self.seed * 1_000_003 + self.step
        gen, batch, stream = torch.Generator().manual_seed(key), self.batch_size, []

        def next_batch():
            if not stream:  # only for families whose averaged networks read real data
                stream.append(self.source.stream(batch, self.device, key))
            return next(stream[0])

        algorithm = self.algorithm
        self.ema.refresh_batch_norm(
            lambda nets: algorithm.ema_forward(nets, next_batch, batch, gen), self.ema_bn_batches
        )

    # -- outputs ----------------------------------------------------------------------------------
    def sampling_nets(self) -> dict:
        return {**self.algorithm.nets, **(self.ema.copies if self.ema else {})}

    def save_grid(self, path: Path) -> Path | None:
        if not self.world.main:
            return None
        self.prepare_sampling()
        self.algorithm.train_mode(False)
        try:
            panels = self.algorithm.panels(
                self.reference, self.sampling_nets(), torch.Generator().manual_seed(self.seed), self.sample_n
            )
        finally:
            self.algorithm.train_mode(True)
        status = self.algorithm.status()
        return save_panels(panels, path, title=f"step {self.step}" + (f", {status}" if status else ""))

    # -- the loop ---------------------------------------------------------------------------------
    def _next_batch(self) -> dict:
        batch = next(self.stream)
        if self.channels_last:
            for k, v in batch.items():
                if v.dim() == 4:
                    batch[k] = v.contiguous(memory_format=torch.channels_last)
        return batch

    def fit(self, stop_after: int | None = None) -> dict:
        """Train to `steps` (or `stop_after`, for tests); returns a plain summary. Each step is one update, then
        its log line when due, then the callbacks due (periodic.py lists them: grids, the NaN guard, checkpoints,
        the user's, evaluation); a signal, or stop_after, ends the loop early. The loggers get the final grid
        of a finished run, and each learns how the run ended."""
        world = self.world
        self.metrics = (
            MetricsLog(self.run_dir, self.loggers, resume_step=self.step or None, config=self.config)
            if world.main
            else NullMetricsLog()
        )
        t0 = time.perf_counter()  # after the loggers' start (an MLflow store is created in seconds)
        self.window = LogWindow(world)
        callbacks = self.callbacks.for_rank(world.main)
        self.algorithm.train_mode(True)
        status, signum, ended = "finished", None, "failed"
        try:
            callbacks.start(self)
            with (
                StopOnSignal() as stop,
                TrainProgress(self.total, self.step, self.progress_mode if world.main else False) as bar,
                StepProfiler(self.profile and world.main, self.run_dir / "profile", self.device) as profiler,
            ):
                while self.step < self.total:
                    self._advance()
                    bar.advance()
                    profiler.step()
                    try:
                        self._after_step(callbacks, bar)
                    except StepUndone:  # the NaN guard restored the last checkpoint: this step never happened
                        continue
                    signalled = self._signalled(stop)
                    if signalled or (stop_after is not None and self.step >= stop_after):
                        status = "interrupted" if signalled else "stopped"
                        break
                signum = stop.signum
            summary = self._finish(status, signum, callbacks, t0)
            if status == "finished":
                self.metrics.finish(summary)
            summary["logger_errors"] = list(self.metrics.errors)
            ended = status
            world.barrier()  # ranks leave together: gloo torn down under a rank still writing can abort at exit
        finally:
            self.metrics.close(ended)
        return summary

    def _advance(self) -> None:
        """One step: the phase it belongs to, the algorithm's update, the EMA, the learning rates."""
        algorithm = self.algorithm
        if algorithm.phase_at(self.step) != algorithm.phase:
            self.enter_phase(algorithm.phase_at(self.step))
        if self.graphs:  # a new iteration: CUDA graphs may reuse the last one's outputs
            torch.compiler.cudagraph_mark_step_begin()
        logs = algorithm.train_step(self._next_batch, self.step)
        if self.ema is not None:
            self.ema.update(algorithm.nets, self.step)
        self.step += 1
        self.schedule.apply(algorithm.optimizers.values(), self.step)
        self.window.add(logs, self.stream.batch_size)

    def _after_step(self, callbacks: CallbackRunner, bar: TrainProgress) -> None:
        """The step's log line when due (callbacks see its means first), then the callbacks due. StepUndone
        from an essential callback leaves the rest undone."""
        step = self.step
        if step % self.log_every == 0 or step == self.total:
            self.last_scalars = scalars = self.window.read()
            callbacks.log(self, scalars)
            self.metrics.write(step, scalars)
            bar.update(step, scalars, self.algorithm.status())
        extra = callbacks.interval(self, step)
        if extra:
            self.metrics.write(step, extra)

    def _signalled(self, stop: StopOnSignal) -> bool:
        """Ctrl-C or SIGTERM; under torchrun the ranks agree at log steps, so a signal stops them all at one step."""
        if not self.world.distributed:
            return stop.requested
        return self.step % self.log_every == 0 and self.world.any(stop.requested, self.device)

    def _finish(self, status: str, signum: int | None, callbacks: CallbackRunner, t0: float) -> dict:
        """After the loop: the losses of a partial window (an interrupted run's), the last checkpoint, the final
        grid of a finished run, the summary."""
        if self.window.steps:
            self.last_scalars = self.window.read()
            bad = nonfinite(self.last_scalars)
            if bad:
                raise divergence(self, bad, self.last_scalars)
        ckpt = self.save_checkpoint()
        grid = self._final_grid() if status == "finished" and self.world.main else None
        seconds = time.perf_counter() - t0
        summary = {
            "status": status,
            "signal": signum if status == "interrupted" else None,
            "step": self.step,
            "steps": self.total,
            "seconds": seconds,
            "img_per_s": self.window.images_read / max(seconds, 1e-9),
            "final_losses": {k: v for k, v in self.last_scalars.items() if k.startswith("loss/")},
            "scalars": self.last_scalars,
            "checkpoint": str(ckpt),
            "final_grid": str(grid) if grid else None,
            "run_dir": str(self.run_dir),
            "metrics": dict(callbacks.scalars),
            "callback_errors": list(callbacks.errors),
        }
        callbacks.end(self, summary)
        summary["callback_errors"] = list(callbacks.errors)
        return summary

    def _final_grid(self) -> Path:
        """The last step's grid, and a copy of it as final.png."""
        grid = self.save_grid(self.run_dir / "samples" / f"step_{self.step:07d}.png")
        final = self.run_dir / "final.png"
        final.unlink(missing_ok=True)
        final.write_bytes(grid.read_bytes())
        return final
