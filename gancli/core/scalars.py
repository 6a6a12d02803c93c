"""Logged scalars stay on the device: summing them never waits for it (one host sync per log window)."""

from __future__ import annotations

from collections.abc import Mapping

import torch


def accumulate(sums: dict[str, torch.Tensor], logs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Adds each logged scalar to its running sum, on the device."""
    for k, v in logs.items():
        sums[k] = sums[k] + v if k in sums else v.clone()
    return sums
