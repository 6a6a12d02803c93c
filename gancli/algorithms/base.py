"""The interface between the generic trainer and a family: everything the trainer, `gan sample` and the
checkpoint know about an algorithm is here.

The trainer owns time (the loop, cadences, logging, checkpoints, callbacks); the algorithm owns everything
about one iteration and its own networks. What crosses the boundary:
- training: `train_step(next_batch, step)` pulls named-field batches and returns detached scalars (read
  by the trainer only every `log_every` steps, so a step never waits on the device);
- networks and optimizers by name (`nets`, `optimizers`), what the EMA averages (`ema_nets`) and what
  sampling loads (`sample_nets`);
- pictures: `panels(reference, nets, generator, n)` gets a fixed batch of real data and returns named
  panels, drawn by kind;
- sampling: `sample_options` declares the `gan sample` options the family supports, `sample(...)`
  returns panels for them;
- export: `export(options)` hands the sampling network over as a module of tensors only (`gan export`,
  `export_options` its options); a family without one is refused by name;
- state: `extra_state()` for what is neither a network nor an optimizer (image pools, running means),
  and phases (`phase_at`, `enter_phase`, `batch_size`) for families that grow while they train.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from gancli.algorithms.export import Export
from gancli.core.errors import GanError
from gancli.core.precision import Precision
from gancli.core.registry import Registry
from gancli.core.rules import COUNT, one_of
from gancli.data.base import Batch, DataSpec
from gancli.viz.panel import Panel


@dataclass(frozen=True)
class SampleOption:
    """A `gan sample` option a family supports (`gan sample ckpt=... <name>=<value>`). Every option of
    every registered family is a typed key of the sample command; an option the checkpoint's family
    does not declare is refused with the list of those it does."""

    type: Any  # int | float | bool | str | Any (the value's type, checked by Hydra)
    help: str
    formats: tuple[str, ...] = ()  # the output formats it can write (empty: all)


class Algorithm:
    """Subclasses build self.nets (name → module) and self.optimizers (name → optimizer) in __init__."""

    #: networks whose exponential moving average the trainer keeps (with `trainer.ema`)
    ema_nets: tuple[str, ...] = ()
    #: networks `gan sample` loads from a checkpoint (their EMA copies when there are some)
    sample_nets: tuple[str, ...] = ()
    #: `gan sample` options this family understands (key → SampleOption)
    sample_options: dict[str, SampleOption] = {}
    #: `gan export` options this family understands (key → SampleOption; its formats are unused)
    export_options: dict[str, SampleOption] = {}
    #: methods that each make one whole update (forward, loss, backward, optimizer step). With
    #: `trainer.compile` the trainer compiles these, so one graph spans every network and loss term of an
    #: update and its optimizer step is compiled too; code they call that cannot be compiled (penalties)
    #: is wrapped in `core.eager.eager`. A family that names none has its networks compiled one by one.
    step_functions: tuple[str, ...] = ()
    #: the rules of this family's own config keys ({dotted key: rule from gancli.core.rules}), checked
    #: before any work and listed by `gan train --help`; a subclass's add to its parents'
    config_rules: dict[str, tuple] = {"model.z_dim": COUNT, "model.noise": one_of("normal", "uniform")}

    #: the data fields the family reads, by name → the kinds it accepts; checked before it is built
    data_fields: dict[str, tuple[str, ...]] = {}
    #: what those fields are, in words, for the message when a dataset lacks them
    data_doc = ""

    @classmethod
    def check_data(cls, cfg, spec: DataSpec) -> None:
        """One message for every family whose dataset lacks a field it reads."""
        if all(name in spec and spec[name].kind in kinds for name, kinds in cls.data_fields.items()):
            return
        raise GanError(
            f"model '{cfg.model.name}' {cls.data_doc}, but dataset '{cfg.dataset.name}' has "
            f"{spec.describe()}; pick a model made for this data."
        )

    @classmethod
    def config_checks(cls, cfg: dict) -> list[str]:
        """Cross-key rules of this family on the resolved config: one message per broken rule."""
        return []

    @classmethod
    def all_config_rules(cls) -> dict[str, tuple]:
        """config_rules of the family and of every family it extends."""
        out: dict[str, tuple] = {}
        for klass in reversed(cls.__mro__):
            out.update(vars(klass).get("config_rules", {}))
        return out

    def __init__(self, cfg, spec: DataSpec, device: torch.device, precision: Precision):
        self.cfg, self.spec, self.device, self.precision = cfg, spec, device, precision
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.phase = 0

    # -- training ---------------------------------------------------------------------------------
    def train_step(self, next_batch: Callable[[], Batch], step: int) -> dict[str, torch.Tensor]:
        """One iteration (any number of updates of any networks). Returns detached scalars."""
        raise NotImplementedError

    def ema_forward(
        self, nets: Mapping[str, nn.Module], next_batch: Callable[[], Batch], n: int, generator: torch.Generator
    ) -> None:
        """Run the averaged networks `nets` forward once, as training would (n samples; real data from
        next_batch if they need any; noise from generator), so the trainer can re-estimate their
        BatchNorm statistics. Families whose EMA networks have no BatchNorm need not implement it."""
        raise NotImplementedError

    def compile_blocker(self) -> str | None:
        """Why torch.compile cannot run this algorithm's step as configured, or None."""
        return None

    def train_mode(self, on: bool = True) -> None:
        for m in self.nets.values():
            m.train(on)

    # -- phases -----------------------------------------------------------------------------------
    def phase_at(self, step: int) -> int:
        """The phase a run is in at `step` (0, 1, 2, ...): families that grow (new layers, a new
        resolution, a new batch size) change phase; the others stay in phase 0."""
        return 0

    def enter_phase(self, phase: int) -> None:
        """Bring the algorithm from any earlier phase to `phase`: add networks or layers to self.nets,
        rebuild or reset optimizers in self.optimizers. The trainer then re-points the EMA, re-applies
        the learning-rate schedule and the batch size. Called in training at each boundary, and once
        with the checkpoint's phase when a run resumes or a checkpoint is sampled."""
        if phase:
            raise NotImplementedError(f"{type(self).__name__} has no phase {phase}")

    def set_phase(self, phase: int) -> bool:
        """enter_phase when the phase changes; True if it did."""
        if phase == self.phase:
            return False
        self.enter_phase(phase)
        self.phase = phase
        return True

    def batch_size(self, phase: int) -> int | None:
        """The batch the stream serves in `phase` (None: trainer.batch_size)."""
        return None

    def status(self) -> str:
        """A few words on where training is (e.g. "16px, fade-in α 0.42"), for the progress bar and grids."""
        return ""

    # -- pictures ---------------------------------------------------------------------------------
    def reference_size(self, n: int) -> int:
        """How many real samples `panels` wants to see (n: trainer.sample_n). 0: none."""
        return n

    def panels(
        self, reference: Batch, nets: Mapping[str, nn.Module], generator: torch.Generator, n: int
    ) -> dict[str, Panel]:
        """Named panels of the current model for the training grids. `reference` is a fixed batch of
        real data (the same at every grid and after a resume); `generator` is seeded the same way at
        every call, so noise drawn from it is the same at every grid; `nets` are the networks to draw
        with (the EMA copies in place of the live ones when there are some)."""
        raise NotImplementedError

    # -- sampling ---------------------------------------------------------------------------------
    def sample(
        self,
        options: Mapping[str, Any],
        n: int,
        nrow: int,
        generator: torch.Generator,
        batch_size: int,
        grid: bool = True,
        nets: Mapping[str, nn.Module] | None = None,
    ) -> dict[str, Panel]:
        """`gan sample` and evaluation: panels for the given options (only declared ones, already checked),
        n samples where that applies, drawn from `generator`, at most `batch_size` through a network at
        once. grid: the panels become one picture (else bulk files, metrics); nets: the networks to draw
        with (default self.nets; evaluation during training passes the EMA copies)."""
        raise NotImplementedError

    # -- export -----------------------------------------------------------------------------------
    def export(self, options: Mapping[str, Any] | None = None) -> Export:
        """The sampling network, as loaded (its EMA copy where `load_for_sampling` put one), as a module of
        tensors in and samples out in the data's units, with its inputs' sampler and contract. `options`:
        declared `export_options` only, already checked. Families that cannot export are refused here."""
        name = self.cfg.model.name if self.cfg is not None else type(self).__name__
        raise GanError(
            f"model '{name}' ({type(self).__name__}) cannot be exported: its family defines no standalone "
            "form of its sampling network (gan sample still draws from the checkpoint)."
        )

    # -- persistence ------------------------------------------------------------------------------
    def extra_state(self) -> dict:
        """What the checkpoint must keep besides networks and optimizers (plain data and tensors)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def state_dict(self) -> dict:
        return {
            "nets": {k: m.state_dict() for k, m in self.nets.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "scalers": self.precision.state_dict(),
            "algorithm": self.extra_state(),
            "phase": self.phase,
        }

    def load_state_dict(self, state: dict, with_optimizers: bool = True, nets: tuple[str, ...] | None = None) -> None:
        """nets: only these networks (sampling needs only `sample_nets`); default all, for resuming.
        The algorithm must already be in the checkpoint's phase (`set_phase(state["phase"])`)."""
        names = list(nets or self.nets)
        missing = set(names) - set(state["nets"])
        if missing:
            raise GanError(
                f"the checkpoint has no weights for network(s) {sorted(missing)}; it was written by another model."
            )
        for k in names:
            load_weights(self.nets[k], state["nets"][k], k, state)
        if with_optimizers:
            for k, o in self.optimizers.items():
                try:
                    o.load_state_dict(state["optimizers"][k])
                except (KeyError, ValueError) as exc:
                    raise GanError(f"the checkpoint's {k} optimizer state does not fit this model ({exc}).") from None
            self.precision.load_state_dict(state.get("scalers", {}))
            self.load_extra_state(state.get("algorithm", {}))


def load_weights(module: nn.Module, weights: dict, name: str, state: dict) -> None:
    """load_state_dict with a one-line reason when the shapes do not fit."""
    try:
        module.load_state_dict(weights)
    except RuntimeError as exc:
        raise GanError(
            f"the checkpoint's {name} weights do not fit this network ({_mismatch(exc)}); it was "
            f"written by another model or another version of gancli (checkpoint format "
            f"{state.get('version', '?')})."
        ) from None


def _mismatch(exc: RuntimeError) -> str:
    """The first concrete reason in a load_state_dict error (its first line is only a heading)."""
    lines = [ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()]
    reason = lines[0] if lines else str(exc).splitlines()[0]
    return reason if len(reason) <= 200 else reason[:197] + "..."


def generate_in_batches(
    fn: Callable[[dict], torch.Tensor], inputs: Mapping[str, torch.Tensor], batch_size: int
) -> torch.Tensor:
    """fn over slices of at most batch_size samples of every input, concatenated on the CPU. Inputs are
    drawn before, so the samples do not depend on batch_size."""
    n = len(next(iter(inputs.values())))
    return torch.cat([fn({k: v[i : i + batch_size] for k, v in inputs.items()}).cpu() for i in range(0, n, batch_size)])


ALGORITHMS: Registry[type[Algorithm]] = Registry("algorithm")


def sample_option_table() -> dict[str, tuple[Any, str, list[str]]]:
    """Every registered family's sampling options (plugins' included): name → (type, help, the algorithms
    that take it); an option two families type differently is typed Any."""
    table: dict[str, tuple[Any, str, list[str]]] = {}
    for name, cls in ALGORITHMS.items():
        for key, opt in cls.sample_options.items():
            if key in table:
                kind, text, users = table[key]
                table[key] = (kind if kind == opt.type else Any, text, [*users, name])
            else:
                table[key] = (opt.type, opt.help, [name])
    return table


def build_algorithm(cfg, spec: DataSpec, device: torch.device, precision: Precision) -> Algorithm:
    family = ALGORITHMS.get(cfg.model.algorithm)
    family.check_data(cfg, spec)
    return family(cfg, spec, device, precision)
