"""Device selection: `auto` prefers CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import torch

from gancli.core.errors import GanError


def select_device(name: str) -> torch.device:
    name = str(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GanError(f"trainer.device='{name}' is not a device; use auto, cpu, cuda, cuda:N or mps.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GanError(
            f"device '{name}' was asked for, but this machine has no usable CUDA GPU (torch "
            f"{torch.__version__}); use device=auto or device=cpu."
        )
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise GanError(f"device '{name}' does not exist: this machine has {torch.cuda.device_count()} CUDA GPU(s).")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise GanError("device 'mps' was asked for, but Apple MPS is not available here; use device=auto.")
    return device
