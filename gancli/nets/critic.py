"""The discriminator every GAN family uses: a registered body (image or points → features) plus heads.

Keeping the heads here, outside the bodies, is what lets a new family reuse any body: the adversarial
head is always present; class conditioning enters at the input (`concat`, Mirza & Osindero) or as a
projection term (`projection`, Miyato & Koyama); auxiliary heads (ACGAN's classifier, InfoGAN's Q)
read the same features; minibatch standard deviation (Karras et al.) appends one batch-diversity feature; packing (PacGAN,
Lin et al.) shows D several samples at once, so a collapsed G is caught by the lack of variety.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from gancli.core.errors import GanError
from gancli.nets.layers import norm_layer

D_CONDITIONS = ("none", "concat", "projection")


class MinibatchStd(nn.Module):
    """Appends, per sample, the mean over features of the std across its group of `group` samples."""

    def __init__(self, group: int):
        super().__init__()
        self.group = group

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, f = h.shape
        g = math.gcd(b, self.group)  # groups must tile the batch
        y = h.float().view(g, b // g, f)  # sample s sits in group s % (b // g)
        std = (y.var(0, unbiased=False) + 1e-8).sqrt().mean(-1)
        return torch.cat([h, std.repeat(g).view(b, 1).to(h.dtype)], 1)


def with_label(x: torch.Tensor, labels: torch.Tensor, num_classes: int, flat: bool) -> torch.Tensor:
    """x with the one-hot label appended: as constant channels for conv bodies, as features for flat ones."""
    onehot = F.one_hot(labels, num_classes).to(x.dtype)
    if flat:
        return torch.cat([x.flatten(1), onehot], 1)
    if x.dim() == 4:
        onehot = onehot[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
    return torch.cat([x, onehot], 1)


class Critic(nn.Module):
    def __init__(
        self,
        body: nn.Module,
        num_classes: int = 0,
        condition: str = "none",
        heads: dict[str, int] | None = None,
        minibatch_std: int = 0,
        spectral: bool = False,
        head_hidden: int = 0,
        pack: int = 1,
        head_norm: str = "none",
    ):
        super().__init__()
        if pack > 1 and (condition != "none" or heads):
            raise GanError(
                "tricks.pack judges groups of samples together, so it cannot be combined with class "
                "conditioning or per-sample heads (acgan, infogan); use tricks.pack=1."
            )
        self.pack = pack
        if condition not in D_CONDITIONS:
            raise GanError(f"model.condition.discriminator='{condition}' is not one of: {', '.join(D_CONDITIONS)}.")
        self.body, self.num_classes, self.condition = body, num_classes, condition
        self.flat = getattr(body, "flat_input", False)  # takes flattened samples (MLP) rather than images
        self.mbstd = MinibatchStd(minibatch_std) if minibatch_std else None
        dim = body.feature_dim + (1 if self.mbstd else 0)
        self.feature_dim = dim
        init_head = getattr(body, "init_head", None)  # e.g. DCGAN: its N(0, 0.02) init for the new layers too

        def layer(m: nn.Module) -> nn.Module:
            """Initialise first, then (optionally) normalise: spectral norm's power iteration starts from
            the final weights."""
            if isinstance(m, nn.Embedding):  # Miyato & Koyama: Xavier; N(0, 1) would swamp the logit at init
                nn.init.xavier_uniform_(m.weight)
            elif init_head is not None:
                init_head(m)
            return nn.utils.parametrizations.spectral_norm(m) if spectral else m

        self.out = layer(nn.Linear(dim, 1))
        self.embed = layer(nn.Embedding(num_classes, dim)) if condition == "projection" else None

        def head(n_out: int) -> nn.Module:
            if not head_hidden:
                return layer(nn.Linear(dim, n_out))
            return nn.Sequential(
                layer(nn.Linear(dim, head_hidden)),
                norm_layer(head_norm, head_hidden, False),
                nn.LeakyReLU(getattr(body, "leak", 0.2), True),
                layer(nn.Linear(head_hidden, n_out)),
            )

        self.heads = nn.ModuleDict({k: head(n) for k, n in (heads or {}).items()})

    def features(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.pack > 1:  # PacGAN: m consecutive samples side by side (channels, or one long vector)
            b = x.shape[0]
            if self.flat:
                x = x.reshape(b // self.pack, -1)
            else:
                x = x.reshape(b // self.pack, self.pack * x.shape[1], *x.shape[2:])
        if self.condition == "concat":
            x = with_label(x, labels, self.num_classes, self.flat)
        h = self.body(x)
        return self.mbstd(h) if self.mbstd is not None else h

    def logits(self, h: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        out = self.out(h).flatten()
        if self.embed is not None:
            out = out + (self.embed(labels) * h).sum(1)
        return out

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B / pack,), features (B / pack, feature_dim)) in one pass: auxiliary heads and feature matching
        read the features, so no family runs D's body twice."""
        h = self.features(x, labels)
        return self.logits(h, labels), h
