"""Mixed precision: autocast plus, for fp16 only, one GradScaler per optimizer.

bf16 needs no loss scaling, and so keeps the step free of the host synchronisation that GradScaler's
inf check costs; it is what `amp: true` picks where the hardware supports it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

import torch

from gancli.core.eager import eager
from gancli.core.errors import GanError

MODES = {"false": None, "off": None, "none": None, "true": "auto", "auto": "auto", "bf16": "bf16", "fp16": "fp16"}


def resolve_amp(value, device: torch.device) -> torch.dtype | None:
    mode = MODES.get(str(value).lower())
    if str(value).lower() not in MODES:
        raise GanError(f"trainer.amp={value!r} is not one of: false, true, bf16, fp16.")
    if mode is None:
        return None
    if mode == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16
    if mode == "fp16" and device.type not in ("cuda", "mps"):
        raise GanError("trainer.amp=fp16 needs a GPU; use trainer.amp=bf16 on the CPU.")
    return torch.bfloat16 if mode == "bf16" else torch.float16


class Precision:
    """Every optimizer step of every family passes through `step` (or `steps`), which makes it the one place
    where gradients are averaged across processes (`grad_sync`, set under torchrun) and clipped
    (`optimizer.clip_norm`)."""

    def __init__(
        self,
        dtype: torch.dtype | None,
        device: torch.device,
        grad_sync: Callable[[Iterable[torch.nn.Parameter]], None] | None = None,
    ):
        self.dtype, self.device, self.grad_sync = dtype, device, grad_sync
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        #: the optimizer step joins a compiled update (False where a schedule changes the learning rate
        #: every step: a compiled step guards on it and would recompile each time)
        self.compile_optimizer = True

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def _scaler(self, name: str) -> torch.amp.GradScaler | None:
        if self.dtype != torch.float16:
            return None
        if name not in self.scalers:
            self.scalers[name] = torch.amp.GradScaler(self.device.type)
        return self.scalers[name]

    def loss_scale(self, name: str) -> torch.Tensor | None:
        """The current fp16 loss scale as a device tensor (no host sync), or None."""
        scaler = self._scaler(name)
        if scaler is None:
            return None
        return scaler.scale(torch.ones((), device=self.device))

    def step(self, name: str, loss: torch.Tensor, optimizer: Optimizers) -> None:
        """backward + optimizer step (+ scaler update for fp16); grads are cleared first. `optimizer` may be
        several that share the loss (one per network, as the AAE reproduction keeps them): each then clips
        and steps its own parameters. An optimizer with `clip_norm` has its gradients rescaled to that
        global norm at most before it steps."""
        self.steps([(name, loss, optimizer)])

    def steps(self, updates: list[tuple[str, torch.Tensor, Optimizers]]) -> None:
        """Several updates from one forward pass (ALI's and BiGAN's simultaneous D and G/E update): every
        gradient is taken at the same parameters before any optimizer steps, and each loss reaches only the
        parameters of its own optimizers."""
        updates = [(name, loss, _as_list(opts)) for name, loss, opts in updates]
        for _, _, opts in updates:
            for o in opts:
                o.zero_grad(set_to_none=True)
        last = len(updates) - 1
        for i, (name, loss, opts) in enumerate(updates):
            scaler = self._scaler(name)
            scaled = loss if scaler is None else scaler.scale(loss)
            if last == 0:
                scaled.backward()
            else:
                params = [p for o in opts for group in o.param_groups for p in group["params"]]
                scaled.backward(inputs=params, retain_graph=i < last)
        for name, _, opts in updates:
            scaler = self._scaler(name)
            for o in opts:
                if self.grad_sync is not None:  # scaled fp16 gradients average the same way: ranks agree on inf
                    _sync(self.grad_sync, o)
                if getattr(o, "clip_norm", None):
                    if scaler is not None:
                        scaler.unscale_(o)
                    _clip(o)
                if scaler is not None:
                    scaler.step(o)
                elif self.compile_optimizer:
                    o.step()
                else:
                    _eager_step(o)
            if scaler is not None:
                scaler.update()

    def state_dict(self) -> dict:
        return {k: s.state_dict() for k, s in self.scalers.items()}

    def load_state_dict(self, state: dict) -> None:
        for k, s in state.items():
            scaler = self._scaler(k)
            if scaler is not None:
                scaler.load_state_dict(s)


Optimizers = torch.optim.Optimizer | list[torch.optim.Optimizer] | tuple[torch.optim.Optimizer, ...]


def _as_list(opts: Optimizers) -> list[torch.optim.Optimizer]:
    return list(opts) if isinstance(opts, (list, tuple)) else [opts]


def _clip(optimizer: torch.optim.Optimizer) -> None:
    """The optimizer's gradients rescaled together to global L2 norm `optimizer.clip_norm` at most."""
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    torch.nn.utils.clip_grad_norm_(params, optimizer.clip_norm, foreach=True)


@eager  # a collective: outside any compiled graph
def _sync(grad_sync, optimizer: torch.optim.Optimizer) -> None:
    grad_sync([p for group in optimizer.param_groups for p in group["params"]])


@eager
def _eager_step(optimizer: torch.optim.Optimizer) -> None:
    optimizer.step()
