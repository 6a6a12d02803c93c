"""What must run eagerly inside a compiled step. torch.compile's graphs cannot be differentiated twice,
and a gradient penalty, R1 or the path-length term differentiates the graph of its forward pass once
more; a collective or a changing learning rate would break a graph or recompile it every step. Such code
lives in functions wrapped by `eager`: a compiled step calls them as a black box (torch.compiler.disable),
and compiled networks called inside them run their eager code (force_eager). Everything else stays
compiled."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import TypeVar

import torch

F = TypeVar("F", bound=Callable)


def eager(fn: F) -> F:
    """fn, always run eagerly: outside any compiled graph, compiled modules inside it included."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        with torch.compiler.set_stance("force_eager"):
            return fn(*args, **kwargs)

    return torch.compiler.disable(run)


@contextlib.contextmanager
def frozen(module: torch.nn.Module):
    """module's parameters take no gradient inside (the other player's step). Set around a compiled step,
    not inside it, so its graph is traced once for a fixed set of trainable parameters."""
    module.requires_grad_(False)
    try:
        yield module
    finally:
        module.requires_grad_(True)
