"""A network arch from outside gancli: an MLP decoder with BatchNorm, registered as a generator arch."""

import math

import torch
import torch.nn as nn

from gancli.nets import GENERATORS


@GENERATORS.register("toy_decoder")
class ToyDecoder(nn.Module):
    def __init__(self, spec, z_dim: int, hidden: int = 64):
        super().__init__()
        self.shape = tuple(spec.shape)
        self.net = nn.Sequential(
            nn.Linear(z_dim, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, math.prod(self.shape)),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(len(z), *self.shape)
