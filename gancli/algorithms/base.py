"""The small interface between the generic trainer and a GAN family.

The trainer owns time (the loop, cadences, logging, checkpoints); the algorithm owns everything
about one iteration. What crosses the boundary: dict batches in, a dict of detached loss tensors
out (read by the trainer only every `log_every` steps, so a step never waits on the device), and
named networks / optimizers for checkpoints.
"""

from __future__ import annotations

from typing import Callable, Mapping

import torch
import torch.nn as nn

from gancli.data.base import DataSpec
from gancli.errors import GanError
from gancli.registry import Registry
from gancli.training.precision import Precision

Batch = dict[str, torch.Tensor]


class Algorithm:
    """Subclasses set self.nets (name → module) and self.optimizers (name → optimizer) in __init__."""

    #: networks whose exponential moving average the trainer keeps and samples from
    ema_nets: tuple[str, ...] = ("G",)

    def __init__(self, cfg, spec: DataSpec, device: torch.device, precision: Precision):
        self.cfg, self.spec, self.device, self.precision = cfg, spec, device, precision
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    # -- training ---------------------------------------------------------------------------------
    def train_step(self, next_batch: Callable[[], Batch], step: int) -> dict[str, torch.Tensor]:
        """One generator update (and whatever D updates precede it). Returns detached scalars."""
        raise NotImplementedError

    # -- sampling ---------------------------------------------------------------------------------
    def sample_inputs(self, n: int, generator: torch.Generator, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The generator's inputs for n samples, drawn from `generator` (CPU), placed on the device.
        labels: the class (or categorical code) of each sample, for models where `sample_classes()` > 0.
        Every entry but "z" is a per-sample condition that bulk sampling stores beside the samples."""
        raise NotImplementedError

    def sample_classes(self) -> int:
        """How many values `gan sample class=...` can pick from (0: the model has no classes)."""
        return 0

    def class_names(self) -> tuple[str, ...]:
        """Names `class=` accepts besides indices: the dataset's, for models trained on its labels."""
        return ()

    def grid_inputs(self, n: int, generator: torch.Generator) -> tuple[dict[str, torch.Tensor], int]:
        """Inputs for a grid of about n samples and its row length: one row per class when there are
        few enough classes, so every training grid shows each class side by side."""
        k = self.sample_classes()
        if not k or k > 32:
            return self.sample_inputs(n, generator), 8
        per_class = max(1, round(n / k))
        return self.sample_inputs(k * per_class, generator, torch.arange(k).repeat_interleave(per_class)), per_class

    def interpolation_inputs(self, rows: int, cols: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        raise GanError(f"{type(self).__name__} does not support interpolation.")

    def traversal_inputs(self, code: str, steps: int, generator: torch.Generator) -> tuple[dict[str, torch.Tensor], int]:
        """A latent-code traversal grid and its row length (InfoGAN)."""
        raise GanError(f"traverse= needs a model with latent codes (infogan); this is {self.cfg.model.name}.")

    @torch.no_grad()
    def generate(self, inputs: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        raise NotImplementedError

    # -- persistence ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "nets": {k: m.state_dict() for k, m in self.nets.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "scalers": self.precision.state_dict(),
        }

    def load_state_dict(self, state: dict, with_optimizers: bool = True, nets: tuple[str, ...] | None = None) -> None:
        """nets: only these networks (sampling needs only the generator's); default all, for resuming."""
        names = list(nets or self.nets)
        missing = set(names) - set(state["nets"])
        if missing:
            raise GanError(f"the checkpoint has no weights for network(s) {sorted(missing)}; it was written by another model.")
        for k in names:
            try:
                self.nets[k].load_state_dict(state["nets"][k])
            except RuntimeError as exc:
                raise GanError(f"the checkpoint's {k} weights do not fit this network ({_mismatch(exc)}); it was "
                               f"written by another model or another version of gancli (checkpoint format "
                               f"{state.get('version', '?')}).") from None
        if with_optimizers:
            for k, o in self.optimizers.items():
                try:
                    o.load_state_dict(state["optimizers"][k])
                except (KeyError, ValueError) as exc:
                    raise GanError(f"the checkpoint's {k} optimizer state does not fit this model ({exc}).") from None
            self.precision.load_state_dict(state.get("scalers", {}))

    def compile_blocker(self) -> str | None:
        """Why torch.compile cannot run this algorithm's step as configured, or None."""
        return None

    def train_mode(self, on: bool = True) -> None:
        for m in self.nets.values():
            m.train(on)


def _mismatch(exc: RuntimeError) -> str:
    """The first concrete reason in a load_state_dict error (its first line is only a heading)."""
    lines = [ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()]
    reason = lines[0] if lines else str(exc).splitlines()[0]
    return reason if len(reason) <= 200 else reason[:197] + "..."


def interpolation_grid(prior, z_dim: int, rows: int, cols: int, generator: torch.Generator) -> torch.Tensor:
    """rows × cols latents: each row walks from one draw of the noise prior to another."""
    a, b = prior.draw((rows, 1, z_dim), generator=generator), prior.draw((rows, 1, z_dim), generator=generator)
    t = torch.linspace(0, 1, cols).view(1, cols, 1)
    return prior.path(a, b, t).reshape(rows * cols, z_dim)


ALGORITHMS: Registry[type[Algorithm]] = Registry("algorithm")


def build_algorithm(cfg, spec: DataSpec, device: torch.device, precision: Precision) -> Algorithm:
    return ALGORITHMS.get(cfg.model.algorithm)(cfg, spec, device, precision)
