"""The generic loop. It knows time — steps, cadences, logs, grids, checkpoints, signals — and nothing
about GANs: each iteration is `algorithm.train_step(next_batch, step)`.

Hot-path rules: no host synchronisation and no config look-ups per step. Losses come back as device
tensors and are summed on the device; they are read (one sync) every `log_every` steps.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from gancli.algorithms.base import Algorithm
from gancli.data.base import DataSource
from gancli.errors import GanError
from gancli.training import rng
from gancli.training.checkpoint import CheckpointDir
from gancli.training.ema import EMA
from gancli.training.metrics_log import MetricsLog, accumulate
from gancli.training.progress import TrainProgress
from gancli.training.schedules import build_schedulers
from gancli.training.signals import StopOnSignal
from gancli.viz import save_samples

log = logging.getLogger("gancli")


class Trainer:
    def __init__(self, algorithm: Algorithm, source: DataSource, trainer_cfg: dict, run_dir: Path,
                 config: dict, seed: int):
        t = trainer_cfg
        self.algorithm, self.source, self.run_dir, self.config = algorithm, source, Path(run_dir), config
        self.spec, self.device = source.spec, algorithm.device
        self.total = int(t["steps"])
        self.batch_size = int(t["batch_size"])
        self.log_every = max(1, int(t["log_every"]))
        self.sample_every = int(t["sample_every"]) or self.total
        self.ckpt_every = int(t["ckpt_every"]) or self.total
        self.progress_mode, self.tensorboard = t["progress"], t["tensorboard"]
        self.channels_last = bool(t["channels_last"]) and self.spec.kind == "image"
        self.step = 0
        self.stream = source.stream(self.batch_size, self.device, seed)
        self.ema = EMA({k: algorithm.nets[k] for k in algorithm.ema_nets}, t["ema"], t["ema_start"],
                       t.get("ema_rampup")) if t["ema"] else None
        self.ema_bn_batches, self.seed, self._bn_refreshed_at = int(t.get("ema_bn_batches", 0)), seed, None
        opt = config["optimizer"]
        self.schedulers = build_schedulers(algorithm.optimizers, opt.get("lr_schedule", "constant"),
                                           opt.get("lr_decay_start", 0.5), self.total)
        self.checkpoints = CheckpointDir(self.run_dir / "checkpoints", t["keep"])
        self.fixed_inputs, self.grid_nrow = algorithm.grid_inputs(int(t["sample_n"]), torch.Generator().manual_seed(seed))
        self.reference = source.reference(2000) if self.spec.kind == "points" else None
        self.last_scalars: dict[str, float] = {}
        if self.channels_last:
            for m in algorithm.nets.values():
                m.to(memory_format=torch.channels_last)
        if t["compile"]:
            blocker = algorithm.compile_blocker()
            if blocker:
                raise GanError(f"trainer.compile=true cannot be combined with {blocker}; use trainer.compile=false.")
            for m in algorithm.nets.values():
                m.compile()

    # -- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            **self.algorithm.state_dict(),
            "ema": self.ema.state_dict() if self.ema else {},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "step": self.step,
            "config": self.config,
            "spec": self.spec.to_plain(),
            "data": self.stream.state_dict(),
            "rng": rng.capture(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.algorithm.load_state_dict(state)
        if self.ema and state.get("ema"):
            self.ema.load_state_dict(state["ema"])
        for k, s in self.schedulers.items():
            if k in state.get("schedulers", {}):
                s.load_state_dict(state["schedulers"][k])
        self.stream.load_state_dict(state["data"])
        rng.restore(state["rng"])
        self.step = int(state["step"])

    def save_checkpoint(self) -> Path:
        self._refresh_ema_batch_norm()
        return self.checkpoints.save(self.state_dict(), self.step)

    def _refresh_ema_batch_norm(self) -> None:
        """Before the EMA copy is used or saved: BN statistics that match its averaged weights. The refresh
        noise comes from its own generator seeded by (seed, step), so training's RNG streams and resumed
        runs are unaffected."""
        if self.ema is None or not self.ema_bn_batches or self._bn_refreshed_at == self.step \
                or not self.ema.has_batch_norm():
            return
        self._bn_refreshed_at = self.step
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.step)
        algorithm = self.algorithm
        self.ema.refresh_batch_norm(
            lambda nets: algorithm.generate(algorithm.latent(self.batch_size, None, gen), nets), self.ema_bn_batches)

    # -- outputs ----------------------------------------------------------------------------------
    def sampling_nets(self) -> dict:
        return {**self.algorithm.nets, **(self.ema.copies if self.ema else {})}

    def save_grid(self, path: Path) -> Path:
        self._refresh_ema_batch_norm()
        self.algorithm.train_mode(False)
        try:
            x = self.algorithm.generate(self.fixed_inputs, self.sampling_nets())
        finally:
            self.algorithm.train_mode(True)
        save_samples(x, self.spec, path, nrow=self.grid_nrow, reference=self.reference, title=f"step {self.step}")
        return path

    # -- the loop ---------------------------------------------------------------------------------
    def _next_batch(self) -> dict:
        batch = next(self.stream)
        if self.channels_last:
            batch["x"] = batch["x"].contiguous(memory_format=torch.channels_last)
        return batch

    def fit(self, stop_after: int | None = None) -> dict:
        """Train to `steps` (or `stop_after`, for tests); returns a plain summary."""
        start_step, t0 = self.step, time.perf_counter()
        metrics = MetricsLog(self.run_dir, self.tensorboard, resume_step=self.step if self.step else None)
        acc: dict[str, torch.Tensor] = {}
        window_steps, window_t = 0, time.perf_counter()
        algorithm, ema, next_batch = self.algorithm, self.ema, self._next_batch
        schedulers = list(self.schedulers.values())
        algorithm.train_mode(True)
        status = "finished"
        try:
            with StopOnSignal() as stop, TrainProgress(self.total, self.step, self.progress_mode) as bar:
                while self.step < self.total:
                    logs = algorithm.train_step(next_batch, self.step)
                    self.step += 1
                    for sched in schedulers:
                        sched.step()
                    if ema is not None:
                        ema.update(algorithm.nets, self.step)
                    accumulate(acc, logs)
                    window_steps += 1
                    bar.advance()
                    step = self.step
                    if step % self.log_every == 0 or step == self.total:
                        now = time.perf_counter()
                        scalars = self._read(acc, window_steps, now - window_t)
                        metrics.write(step, scalars)
                        bar.update(step, scalars)
                        acc, window_steps, window_t = {}, 0, now
                    if step % self.sample_every == 0 and step < self.total:
                        self.save_grid(self.run_dir / "samples" / f"step_{step:07d}.png")
                    if step % self.ckpt_every == 0 and step < self.total:
                        self.save_checkpoint()
                    if stop.requested or (stop_after is not None and step >= stop_after):
                        status = "interrupted" if stop.requested else "stopped"
                        break
                signum = stop.signum
        finally:
            metrics.close()
        if window_steps:  # losses of a partial window (interrupted runs)
            self.last_scalars = self._read(acc, window_steps, time.perf_counter() - window_t)
        ckpt = self.save_checkpoint()
        grid = None
        if status == "finished":
            grid = self.save_grid(self.run_dir / "samples" / f"step_{self.step:07d}.png")
            final = self.run_dir / "final.png"
            final.unlink(missing_ok=True)
            final.write_bytes(grid.read_bytes())
            grid = final
        seconds = time.perf_counter() - t0
        return {
            "status": status, "signal": signum if status == "interrupted" else None,
            "step": self.step, "steps": self.total, "seconds": seconds,
            "img_per_s": (self.step - start_step) * self.batch_size / max(seconds, 1e-9),
            "final_losses": {k: v for k, v in self.last_scalars.items() if k.startswith("loss/")},
            "scalars": self.last_scalars, "checkpoint": str(ckpt), "final_grid": str(grid) if grid else None,
            "run_dir": str(self.run_dir),
        }

    def _read(self, acc: dict[str, torch.Tensor], n: int, seconds: float) -> dict[str, float]:
        """The one host sync of a log window: mean of each logged scalar over the window."""
        keys = list(acc)
        values = torch.stack([acc[k].float() for k in keys]).div_(n).tolist() if keys else []
        scalars = dict(zip(keys, values))
        scalars["img_per_s"] = n * self.batch_size / max(seconds, 1e-9)
        self.last_scalars = scalars
        return scalars
