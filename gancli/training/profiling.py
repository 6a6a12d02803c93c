"""`trainer.profile=true`: a torch.profiler trace of a few training steps, for TensorBoard's profiler
plugin (`tensorboard --logdir <run dir>/profile`) or chrome://tracing / Perfetto (the .pt.trace.json).

The first steps are skipped (allocator warm-up, torch.compile, cuDNN autotuning), a few more warm the
profiler up, and the next ones are recorded; then the profiler stops and training goes on unobserved.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import torch

log = logging.getLogger("gancli")

SKIP, WARMUP, ACTIVE = 5, 2, 5  # steps 6-7 warm the profiler up, steps 8-12 are recorded


class StepProfiler(contextlib.AbstractContextManager):
    def __init__(self, on: bool, folder: Path, device: torch.device):
        self.on, self.folder, self.steps = bool(on), Path(folder), 0
        self.profiler = None
        if not self.on:
            return
        activities = [torch.profiler.ProfilerActivity.CPU]
        if device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        self.profiler = torch.profiler.profile(
            activities=activities,
            schedule=torch.profiler.schedule(skip_first=SKIP, wait=0, warmup=WARMUP, active=ACTIVE, repeat=1),
            on_trace_ready=torch.profiler.tensorboard_trace_handler(str(self.folder)),
            record_shapes=True,
            profile_memory=True,
            with_stack=False,
        )

    def __enter__(self):
        if self.profiler is not None:
            self.profiler.__enter__()
        return self

    def step(self) -> None:
        """After each training step; stops the profiler once its window is recorded."""
        if self.profiler is None:
            return
        self.steps += 1
        self.profiler.step()
        if self.steps >= SKIP + WARMUP + ACTIVE:
            self._close()

    def _close(self) -> None:
        profiler, self.profiler = self.profiler, None
        profiler.__exit__(None, None, None)
        traces = sorted(self.folder.glob("*.pt.trace.json"))
        if not traces:
            log.warning("trainer.profile: the run ended before step %d, so no trace was written", SKIP + WARMUP + 1)
        else:
            log.info(
                "profiled steps %d-%d: %s (tensorboard --logdir %s)",
                SKIP + WARMUP + 1,
                SKIP + WARMUP + ACTIVE,
                traces[-1],
                self.folder,
            )

    def __exit__(self, *exc):
        if self.profiler is not None:  # a run shorter than the window: keep what was recorded
            self._close()
        return False
