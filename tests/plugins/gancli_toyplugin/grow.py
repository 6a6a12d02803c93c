"""A test-only family that grows: a GAN on points whose G and D each gain a residual block at step
`grow_at` (phase 1), whose optimizers are rebuilt for the new parameters and whose batch size changes
then (`batch_sizes`). The new blocks start at zero, so the grown networks compute what the old ones did.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from gancli.algorithms.base import ALGORITHMS, Algorithm, generate_in_batches
from gancli.algorithms.optim import build_optimizer
from gancli.losses import build_loss
from gancli.viz import Panel


class Growing(nn.Module):
    """in → hidden → [residual blocks] → out; grow() appends a block whose output layer starts at zero."""

    def __init__(self, n_in: int, hidden: int, n_out: int):
        super().__init__()
        self.stem, self.head = nn.Linear(n_in, hidden), nn.Linear(hidden, n_out)
        self.blocks = nn.ModuleList()
        self.hidden = hidden

    def grow(self) -> None:
        block = nn.Sequential(nn.ReLU(), nn.Linear(self.hidden, self.hidden))
        nn.init.zeros_(block[1].weight)
        nn.init.zeros_(block[1].bias)
        self.blocks.append(block.to(self.stem.weight.device))

    def forward(self, x):
        h = self.stem(x)
        for block in self.blocks:
            h = h + block(h)
        return self.head(torch.relu(h))


@ALGORITHMS.register("toy_grow")
class ToyGrow(Algorithm):
    ema_nets = ("G",)
    sample_nets = ("G",)

    def __init__(self, cfg, spec, device, precision):
        super().__init__(cfg, spec, device, precision)
        m = cfg.model
        self.z_dim, self.grow_at, self.batch_sizes = int(m.z_dim), int(m.grow_at), [int(b) for b in m.batch_sizes]
        self.G = Growing(self.z_dim, int(m.hidden), 2).to(device)
        self.D = Growing(2, int(m.hidden), 1).to(device)
        self.nets = {"G": self.G, "D": self.D}
        self._build_optimizers()
        self.loss = build_loss(cfg.loss.name)

    def _build_optimizers(self) -> None:
        self.optimizers = {
            "G": build_optimizer(self.cfg.optimizer, self.G.parameters(), "g"),
            "D": build_optimizer(self.cfg.optimizer, self.D.parameters(), "d"),
        }

    # -- phases -----------------------------------------------------------------------------------
    def phase_at(self, step):
        return 0 if step < self.grow_at else 1

    def enter_phase(self, phase):
        for _ in range(phase - len(self.G.blocks)):
            self.G.grow()
            self.D.grow()
        self._build_optimizers()  # fresh optimizers over every parameter

    def batch_size(self, phase):
        return self.batch_sizes[phase]

    def status(self):
        return f"{len(self.G.blocks)} block(s)"

    # -- training ---------------------------------------------------------------------------------
    def train_step(self, next_batch, step):
        real = next_batch()["x"]
        fake = self.G(torch.randn(len(real), self.z_dim, device=self.device))
        d_loss = self.loss.d_loss(self.D(real).flatten(), self.D(fake.detach()).flatten())
        self.precision.step("D", d_loss, self.optimizers["D"])
        self.D.requires_grad_(False)
        g_loss = self.loss.g_loss(self.D(fake).flatten())
        self.precision.step("G", g_loss, self.optimizers["G"])
        self.D.requires_grad_(True)
        return {
            "loss/D": d_loss.detach(),
            "loss/G": g_loss.detach(),
            "batch": torch.tensor(float(len(real)), device=self.device),
        }

    # -- pictures and sampling --------------------------------------------------------------------
    def reference_size(self, n):
        return 256

    def panels(self, reference, nets, generator, n):
        with torch.no_grad():
            fake = nets["G"](torch.randn(n, self.z_dim, generator=generator).to(self.device))
        return {"samples": Panel("points", fake, overlay=reference["x"])}

    def sample(self, options, n, nrow, generator, batch_size, grid=True, nets=None):
        G = (nets or self.nets)["G"]
        z = torch.randn(n, self.z_dim, generator=generator)
        with torch.no_grad():
            x = generate_in_batches(lambda b: G(b["z"].to(self.device)), {"z": z}, batch_size)
        return {"samples": Panel("points", x, nrow)}
