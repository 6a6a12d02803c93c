"""The generic loop. It knows time — steps, phases, cadences, logs, grids, checkpoints, callbacks,
signals — and nothing about any family: it talks to the `Algorithm` interface only.

Hot-path rules: no host synchronisation and no config look-ups per step. Losses come back as device
tensors and are summed on the device; they are read (one sync) every `log_every` steps.
"""

from __future__ import annotations

import logging
import math
import time
import weakref
from pathlib import Path

import torch

from gancli.algorithms.base import Algorithm
from gancli.core.scalars import accumulate
from gancli.data.base import DataSource
from gancli.core.errors import GanError
from gancli.training import rng
from gancli.training.callbacks import CallbackRunner, build_callbacks
from gancli.core.checkpoint import CheckpointDir, load_checkpoint
from gancli.training.distributed import SINGLE, World
from gancli.training.ema import EMA
from gancli.training.metrics_log import MetricsLog, NullMetricsLog
from gancli.training.profiling import StepProfiler
from gancli.training.progress import TrainProgress
from gancli.training.schedules import LRSchedule
from gancli.training.signals import Deferred, StopOnSignal
from gancli.viz import save_panels

log = logging.getLogger("gancli")


class Trainer:
    def __init__(self, algorithm: Algorithm, source: DataSource, trainer_cfg: dict, run_dir: Path,
                 config: dict, seed: int, world: World = SINGLE):
        t = trainer_cfg
        self.algorithm, self.source, self.run_dir, self.config = algorithm, source, Path(run_dir), config
        self.world = world
        self.sync_bn = bool(t.get("sync_bn", False))
        self.profile = bool(t.get("profile", False))
        if self.sync_bn and world.distributed and algorithm.device.type == "cpu":
            raise GanError("trainer.sync_bn=true needs CUDA devices (PyTorch's SyncBatchNorm does not run on the "
                           "CPU); use trainer.sync_bn=false, or train on GPUs.")
        self.spec, self.device = source.spec, algorithm.device
        self.total = int(t["steps"])
        self.default_batch = int(t["batch_size"])
        self.log_every = max(1, int(t["log_every"]))
        self.sample_every = int(t["sample_every"]) or self.total
        self.ckpt_every = int(t["ckpt_every"]) or self.total
        self.sample_n = int(t["sample_n"])
        self.progress_mode, self.tensorboard = t["progress"], t["tensorboard"]
        self.channels_last = bool(t["channels_last"])
        mode = str(t["compile"]).lower()
        self.compile = mode != "false"
        self.compile_mode = None if mode in ("true", "false") else mode
        self.graphs = self.compile_mode == "reduce-overhead"              # CUDA graphs (a no-op on the CPU)
        self.step, self.seed = 0, seed
        self.nan_policy, self.nan_restores = str(t.get("nan", "stop")), 0
        if self.compile:
            blocker = algorithm.compile_blocker()
            if blocker:
                raise GanError(f"trainer.compile=true cannot be combined with {blocker}; use trainer.compile=false.")
        self._prepared: weakref.WeakSet = weakref.WeakSet()
        algorithm.set_phase(algorithm.phase_at(0))
        self.stream = source.stream(self.batch_size, self.device, seed)
        if world.distributed:
            self.stream.shard(world.rank, world.size)
        self.ema = EMA({k: algorithm.nets[k] for k in algorithm.ema_nets}, t["ema"], t["ema_start"],
                       t.get("ema_rampup")) if t["ema"] and algorithm.ema_nets else None
        if t["ema"] and not algorithm.ema_nets:
            log.warning("trainer.ema is set, but %s declares no networks to average (ema_nets); no EMA is kept",
                        type(algorithm).__name__)
        self.ema_bn_batches, self._bn_refreshed_at = int(t.get("ema_bn_batches", 0)), None
        if self.ema is not None and self.ema_bn_batches and self.ema.has_batch_norm() \
                and type(algorithm).ema_forward is Algorithm.ema_forward:
            log.warning("%s does not say how to run its averaged networks (ema_forward), so their BatchNorm "
                        "statistics are copied from the live ones", type(algorithm).__name__)
            self.ema_bn_batches = 0
        opt = config["optimizer"]
        self.schedule = LRSchedule(opt.get("lr_schedule", "constant"), opt.get("lr_decay_start", 0.5), self.total)
        self.schedule.apply(algorithm.optimizers.values(), 0)
        if self.compile:
            self._compile_steps()
        self.checkpoints = CheckpointDir(self.run_dir / "checkpoints", t["keep"])
        self.reference = source.reference(algorithm.reference_size(self.sample_n))
        self.callbacks = CallbackRunner(build_callbacks(t.get("callbacks")))
        self.last_scalars: dict[str, float] = {}
        self._prepare_nets()

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
            if self.sync_bn and self.world.distributed:   # in place: the optimizers keep the same parameters
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
        log.info("step %d: phase %d%s", self.step, phase, f" ({self.algorithm.status()})" if self.algorithm.status() else "")

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
        self.world.barrier()     # the file is whole before any rank may read it (trainer.nan=skip)
        return path

    def _write(self, save, rank_rng: list | None = None) -> Path:
        self.prepare_sampling()
        state = self.state_dict()
        if rank_rng is not None:
            state["rank_rng"] = rank_rng
        with Deferred():     # a signal now waits for the write to finish
            return save(state)

    def prepare_sampling(self) -> None:
        """Before the EMA copy is used or saved: BN statistics that match its averaged weights. The refresh
        noise and data come from their own generator and stream, seeded by (seed, step), so training's RNG
        streams and resumed runs are unaffected."""
        if self.ema is None or not self.ema_bn_batches or self._bn_refreshed_at == self.step \
                or not self.ema.has_batch_norm():
            return
        self._bn_refreshed_at = self.step
        key = self.seed * 1_000_003 + self.step
        gen, batch, stream = torch.Generator().manual_seed(key), self.batch_size, []

        def next_batch():
            if not stream:  # only for families whose averaged networks read real data
                stream.append(self.source.stream(batch, self.device, key))
            return next(stream[0])

        algorithm = self.algorithm
        self.ema.refresh_batch_norm(lambda nets: algorithm.ema_forward(nets, next_batch, batch, gen),
                                    self.ema_bn_batches)

    # -- outputs ----------------------------------------------------------------------------------
    def sampling_nets(self) -> dict:
        return {**self.algorithm.nets, **(self.ema.copies if self.ema else {})}

    def save_grid(self, path: Path) -> Path | None:
        if not self.world.main:
            return None
        self.prepare_sampling()
        self.algorithm.train_mode(False)
        try:
            panels = self.algorithm.panels(self.reference, self.sampling_nets(),
                                           torch.Generator().manual_seed(self.seed), self.sample_n)
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
        """Train to `steps` (or `stop_after`, for tests); returns a plain summary."""
        t0, images = time.perf_counter(), 0
        world = self.world
        metrics = (MetricsLog(self.run_dir, self.tensorboard, resume_step=self.step if self.step else None)
                   if world.main else NullMetricsLog())
        acc: dict[str, torch.Tensor] = {}
        window_steps, window_images, window_t = 0, 0, time.perf_counter()
        algorithm, ema, next_batch = self.algorithm, self.ema, self._next_batch
        callbacks = self.callbacks if world.main else CallbackRunner({})   # callbacks run on rank 0 only
        optimizers = algorithm.optimizers
        algorithm.train_mode(True)
        callbacks.start(self)
        status = "finished"
        try:
            with StopOnSignal() as stop, TrainProgress(self.total, self.step, self.progress_mode if world.main else False) \
                    as bar, StepProfiler(self.profile and world.main, self.run_dir / "profile", self.device) as profiler:
                while self.step < self.total:
                    if algorithm.phase_at(self.step) != algorithm.phase:
                        self.enter_phase(algorithm.phase_at(self.step))
                        optimizers = algorithm.optimizers
                    if self.graphs:   # a new iteration: CUDA graphs may reuse the last one's outputs
                        torch.compiler.cudagraph_mark_step_begin()
                    logs = algorithm.train_step(next_batch, self.step)
                    if ema is not None:
                        ema.update(algorithm.nets, self.step)
                    self.step += 1
                    self.schedule.apply(optimizers.values(), self.step)
                    accumulate(acc, logs)
                    window_steps += 1
                    window_images += self.stream.batch_size
                    bar.advance()
                    profiler.step()
                    step = self.step
                    if step % self.log_every == 0 or step == self.total:
                        now = time.perf_counter()
                        scalars = self._read(acc, window_steps, window_images, now - window_t)
                        images += window_images
                        acc, window_steps, window_images, window_t = {}, 0, 0, now
                        if self._diverged(scalars, step, metrics):
                            optimizers = algorithm.optimizers
                            continue
                        metrics.write(step, scalars)
                        bar.update(step, scalars, algorithm.status())
                    if step % self.sample_every == 0 and step < self.total:
                        self.save_grid(self.run_dir / "samples" / f"step_{step:07d}.png")
                    if step % self.ckpt_every == 0 and step < self.total:
                        if acc and self._diverged(self._sums_finite(acc), step, metrics):   # never save NaN weights
                            acc, window_steps, window_images = {}, 0, 0
                            optimizers = algorithm.optimizers
                            continue
                        self.save_checkpoint()
                    if callbacks:
                        extra = callbacks.interval(self, step)
                        if extra:
                            metrics.write(step, extra)
                    # under torchrun the ranks agree at log steps, so a signal stops them all at one step
                    signalled = stop.requested if not world.distributed else \
                        step % self.log_every == 0 and world.any(stop.requested, self.device)
                    if signalled or (stop_after is not None and step >= stop_after):
                        status = "interrupted" if signalled else "stopped"
                        break
                signum = stop.signum
        finally:
            metrics.close()
        if window_steps:  # losses of a partial window (interrupted runs)
            self.last_scalars = self._read(acc, window_steps, window_images, time.perf_counter() - window_t)
            images += window_images
            bad = [k for k, v in self.last_scalars.items() if not math.isfinite(v)]
            if bad:
                raise self._divergence(bad, self.last_scalars, self.step)
        ckpt = self.save_checkpoint()
        grid = None
        if status == "finished" and world.main:
            grid = self.save_grid(self.run_dir / "samples" / f"step_{self.step:07d}.png")
            final = self.run_dir / "final.png"
            final.unlink(missing_ok=True)
            final.write_bytes(grid.read_bytes())
            grid = final
        seconds = time.perf_counter() - t0
        summary = {
            "status": status, "signal": signum if status == "interrupted" else None,
            "step": self.step, "steps": self.total, "seconds": seconds,
            "img_per_s": images / max(seconds, 1e-9),
            "final_losses": {k: v for k, v in self.last_scalars.items() if k.startswith("loss/")},
            "scalars": self.last_scalars, "checkpoint": str(ckpt), "final_grid": str(grid) if grid else None,
            "run_dir": str(self.run_dir),
            "metrics": dict(callbacks.scalars), "callback_errors": list(callbacks.errors),
        }
        callbacks.end(self, summary)
        summary["callback_errors"] = list(callbacks.errors)
        return summary

    # -- divergence -------------------------------------------------------------------------------
    def _sums_finite(self, acc: dict[str, torch.Tensor]) -> dict[str, float]:
        """The window's sums so far (one host sync): before a checkpoint, to keep NaN weights off disk."""
        keys = list(acc)
        return dict(zip(keys, self.world.mean_(torch.stack([acc[k].float() for k in keys])).tolist()))

    def _divergence(self, bad: list[str], scalars: dict, step: int) -> GanError:
        last = self.checkpoints.last
        kept = (f"The last good checkpoint, {last} (step {load_checkpoint(last)['step']}), is intact."
                if last.is_file() else "No checkpoint was written before it.")
        return GanError(f"{bad[0]} became {scalars[bad[0]]} by step {step} (logged over the last "
                        f"{self.log_every} steps{', with ' + ', '.join(bad[1:]) if bad[1:] else ''}): training "
                        f"diverged and stopped. {kept} Train again with a lower optimizer.lr, or with "
                        "trainer.nan=skip, which restores the last checkpoint and goes on at half the learning rate.")

    def _diverged(self, scalars: dict[str, float], step: int, metrics: MetricsLog) -> bool:
        """False if every scalar is finite. Otherwise stop (trainer.nan=stop), or restore the last checkpoint
        with halved learning rates and return True (trainer.nan=skip; at most 3 times in a row)."""
        bad = [k for k, v in scalars.items() if not math.isfinite(v)]
        if not bad:
            self.nan_restores = 0
            return False
        last = self.checkpoints.last
        if self.nan_policy != "skip" or not last.is_file() or self.nan_restores >= 3:
            raise self._divergence(bad, scalars, step)
        self.nan_restores += 1
        self.load_state_dict(load_checkpoint(last))
        for opt in self.algorithm.optimizers.values():
            for group in opt.param_groups:
                group["initial_lr"] = group.get("initial_lr", group["lr"]) * 0.5
                group["lr"] *= 0.5
        metrics.rewind(self.step)
        log.warning("%s became %s by step %d: restored step %d and halved the learning rates (trainer.nan=skip)",
                    bad[0], scalars[bad[0]], step, self.step)
        return True

    def _read(self, acc: dict[str, torch.Tensor], n: int, images: int, seconds: float) -> dict[str, float]:
        """The one host sync of a log window: mean of each logged scalar over the window."""
        keys = list(acc)
        values = self.world.mean_(torch.stack([acc[k].float() for k in keys]).div_(n)).tolist() if keys else []
        scalars = dict(zip(keys, values))
        scalars["img_per_s"] = images / max(seconds, 1e-9)
        self.last_scalars = scalars
        return scalars
