"""What a trained model can do besides sampling, as runtime-checkable protocols. Commands and metrics ask
`isinstance(model, Translates)` the same way everywhere, without importing the families (metrics sit below
them); a family has a capability by having its methods."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Encodes(Protocol):
    """x → codes and back: the encoder families (aae*, ali, bigan); `gan encode`, reconstruct=."""

    def encode(self, *args, **kwargs): ...

    def decode(self, *args, **kwargs): ...

    def reconstruct(self, *args, **kwargs): ...


@runtime_checkable
class Translates(Protocol):
    """Images of one domain → the other (pix2pix, cyclegan); `paired` when each input has a target."""

    paired: bool

    def check_direction(self, direction): ...

    def input_field(self, direction): ...

    def translate(self, *args, **kwargs): ...


@runtime_checkable
class PredictsCodes(Protocol):
    """Reads a latent code back from images (InfoGAN's Q)."""

    def predict_codes(self, x): ...


@torch.no_grad()
def read_codes(coder: PredictsCodes, x: torch.Tensor, batch_size: int, prepare=None) -> dict[str, torch.Tensor]:
    """`predict_codes` over many inputs, a batch at a time (each through `prepare`, e.g. uint8 → the networks'
    range), gathered on the CPU: {"categorical": (N,) categories, "continuous": (N, k) means}, those it has."""
    parts: dict[str, list[torch.Tensor]] = {}
    device = getattr(coder, "device", None)
    for i in range(0, len(x), batch_size):
        chunk = x[i : i + batch_size]
        cat, cont = coder.predict_codes((prepare(chunk) if prepare else chunk).to(device))
        for key, v in (("categorical", cat), ("continuous", None if cont is None else cont.float())):
            if v is not None:
                parts.setdefault(key, []).append(v.cpu())
    return {k: torch.cat(v) for k, v in parts.items()}
