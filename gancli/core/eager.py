"""Where compiled networks must run eagerly: torch.compile's graphs cannot be differentiated twice, and a
gradient penalty, R1 or the path-length term differentiates the graph of its forward pass once more. The
forward passes those terms differentiate run inside `double_backward()`; every other step stays compiled."""

from __future__ import annotations

import torch


def double_backward():
    """Compiled modules called inside run eagerly (a no-op for modules that are not compiled)."""
    return torch.compiler.set_stance("force_eager")
