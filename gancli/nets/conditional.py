"""Class-conditional generators: any registered generator, with the class joined to the noise."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from gancli.core.errors import GanError

G_CONDITIONS = ("none", "onehot", "embedding")


class ConditionalGenerator(nn.Module):
    """G(z, y): the class enters with the noise, one-hot (Mirza & Osindero) or as a learned embedding."""

    def __init__(self, build_inner, z_dim: int, num_classes: int, condition: str, embed_dim: int):
        super().__init__()
        if condition not in ("onehot", "embedding"):
            raise GanError(f"model.condition.generator='{condition}' is not one of: {', '.join(G_CONDITIONS)}.")
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, embed_dim) if condition == "embedding" else None
        self.net = build_inner(z_dim + (embed_dim if self.embed is not None else num_classes))
        self.z_dim = z_dim

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        c = self.embed(labels) if self.embed is not None else F.one_hot(labels, self.num_classes).to(z.dtype)
        return self.net(torch.cat([z, c], 1))
