"""What a trained model can do besides sampling, as runtime-checkable protocols. Commands and metrics ask
`isinstance(model, Translates)` the same way everywhere, without importing the families (metrics sit below
them); a family has a capability by having its methods."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


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
