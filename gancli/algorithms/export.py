"""A family's sampling network as a standalone module, for `gan export` and for Python code: tensors in,
samples out in the data's units (images in [0, 1], as `gan sample` writes them before rounding; points
and sequences in the dataset's own units), with a way to draw its inputs and the words its contract
needs. A family that can be exported returns an `Export` from `Algorithm.export(options)`; what turns
one into a file (tracing, ONNX) is the command's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from gancli.data.base import Field
from gancli.data.sequences import unscale

EXAMPLE_BATCH = 2  # the batch an export is traced and described with

OUTPUTS = {  # kind → what the exported output holds
    "image": "images (N, C, H, W), float in [0, 1]: gan sample's pixel values / 255, before rounding",
    "points": "points (N, D) in the dataset's units",
    "sequence": "sequences (N, steps, channels) in the dataset's units (its scaling undone)",
}


def data_units(x: torch.Tensor, data: Field) -> torch.Tensor:
    """Network output ([-1, 1] for images) → what `gan sample` writes: images in [0, 1], sequences unscaled."""
    x = x.float()
    if data.kind == "image":
        return (x.clamp(-1, 1) + 1) / 2
    return unscale(x, data)


class SamplingModule(nn.Module):
    """forward(*inputs) = fn(nets, {name: input}): a family's sampling function over the networks it uses,
    which this module owns, so tracing it records tensor operations only. Inputs come in `names` order."""

    def __init__(self, nets: Mapping[str, nn.Module], fn: Callable, names: tuple[str, ...]):
        super().__init__()
        self.nets = nn.ModuleDict(dict(nets))
        self.fn, self.names = fn, tuple(names)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.fn(self.nets, dict(zip(self.names, inputs)))


@dataclass
class Export:
    """What a family exports: `module` takes the inputs named in `about`, in its order; `draw(n, generator)`
    draws them for n samples as the family's sampling would (on the CPU; a 0-d tensor is one value for the
    whole batch, such as truncation ψ); `details` are facts the contract records (prior, level, ...)."""

    module: SamplingModule
    draw: Callable[[int, torch.Generator], dict[str, torch.Tensor]]
    about: dict[str, str]
    output: Field
    details: dict = field(default_factory=dict)
    class_names: tuple[str, ...] = ()
    classes: int = 0
    stochastic: bool = False  # draws randomness of its own at every call (pix2pix's test-time dropout)

    @classmethod
    def of(cls, nets: Mapping[str, nn.Module], fn: Callable, about: dict[str, str], **kw) -> Export:
        return cls(SamplingModule(nets, fn, tuple(about)), about=about, **kw)

    def inputs(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        drawn = self.draw(n, generator)
        return tuple(drawn[k].cpu() for k in self.about)

    def contract(self) -> dict:
        """The file's input contract: each input's name, shape ("batch" for the free axis), dtype and meaning;
        the output's; the latent size and the classes."""
        example = self.inputs(EXAMPLE_BATCH, torch.Generator().manual_seed(0))
        with torch.no_grad():
            out = self.module(*example)

        def shape(t: torch.Tensor) -> list:
            return ["batch", *t.shape[1:]] if t.dim() else []

        inputs = [
            {"name": k, "shape": shape(t), "dtype": str(t.dtype).removeprefix("torch."), "about": self.about[k]}
            for k, t in zip(self.about, example)
        ]
        z = dict(zip(self.about, example)).get("z")
        return {
            "inputs": inputs,
            "output": {
                "name": "output",
                "kind": self.output.kind,
                "shape": shape(out),
                "dtype": str(out.dtype).removeprefix("torch."),
                "about": OUTPUTS.get(self.output.kind, self.output.kind),
                **({"range": [0.0, 1.0]} if self.output.kind == "image" else {}),
            },
            "latent_size": list(z.shape[1:]) if z is not None else None,
            "classes": {"count": self.classes, "names": list(self.class_names)} if self.classes else None,
            "stochastic": self.stochastic,
            "details": self.details,
        }
