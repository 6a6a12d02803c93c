"""A panel: one named picture an algorithm wants drawn (its samples, an input, a reconstruction, ...).

Algorithms return panels by name; the viz layer lays them out side by side, each drawn by the renderer
of its kind (image → grid, points → scatter, sequence → line plot), with the names as labels. Bulk
sample files store each panel's data under its name, with its per-sample conditions (`meta`) beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Panel:
    kind: str  # the renderer: "image" | "points" | ... (a Field's kind)
    data: torch.Tensor  # (N, ...) samples in the model's range
    nrow: int = 8  # grid kinds: samples per row
    meta: dict[str, torch.Tensor] = field(default_factory=dict)  # per-sample conditions (labels, codes)
    overlay: torch.Tensor | None = None  # real samples drawn beneath (scatter plots)
    extras: dict = field(default_factory=dict)  # kind-specific drawing hints (e.g. mode centres)

    def cpu(self) -> Panel:
        return Panel(
            self.kind,
            self.data.detach().float().cpu(),
            self.nrow,
            {k: v.detach().cpu() for k, v in self.meta.items()},
            None if self.overlay is None else self.overlay.detach().float().cpu(),
            self.extras,
        )
