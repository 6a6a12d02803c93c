"""A trained model as a Python object: what `gan sample`, `gan encode`, `gan translate` and `gan eval` use,
and what `gancli.load(path)` gives a notebook or a service.

It rebuilds the family from the checkpoint alone (the same safe `weights_only` load as `resume=`), with
its EMA networks in place of the trained ones where the run kept them. What comes out is in the data's
units: images in [0, 1] (N, C, H, W), sequences in the units of the data they were trained on, points as
they are. What goes in (`encode`, `reconstruct`, `translate`) is in the same units, or uint8 images.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
import torch.nn as nn
from omegaconf import OmegaConf

from gancli.algorithms import build_algorithm
from gancli.algorithms.base import Algorithm, load_weights, sample_option_table
from gancli.core.capabilities import Encodes, PredictsCodes, Translates, read_codes
from gancli.core.checkpoint import load_checkpoint
from gancli.core.device import select_device
from gancli.core.errors import GanError
from gancli.core.precision import Precision
from gancli.data.base import DataSpec, to_float_image
from gancli.viz import Panel

ENCODERS = "aae, aae_supervised, aae_semi, aae_cluster, aae_dimred, ali, bigan, bigan_conv"
TRANSLATORS = "pix2pix, pix2pixhd, cyclegan"


def load_for_sampling(ckpt_path: str | Path, device: torch.device, use_ema: bool = True):
    """(algorithm in eval mode at the checkpoint's phase, spec, checkpoint): every network loaded, the
    sampling ones (`sample_nets`) from their EMA copies when the run kept them and use_ema is set."""
    state = load_checkpoint(ckpt_path)
    spec = DataSpec.from_plain(state["spec"])
    cfg = OmegaConf.create(state["config"])
    algorithm = build_algorithm(cfg, spec, device, Precision(None, device))
    algorithm.set_phase(int(state.get("phase", 0)))
    algorithm.load_state_dict(state, with_optimizers=False)
    if use_ema and state.get("ema"):
        for k, sd in state["ema"].items():
            if k in algorithm.sample_nets:
                load_weights(algorithm.nets[k], sd, f"{k} (EMA)", state)
    algorithm.train_mode(False)
    return algorithm, spec, state


def check_options(algorithm: Algorithm, options: Mapping, model: str, fmt: str | None = None) -> None:
    """Each option must be one the family declares (and, for a file, one that can write that format)."""
    supported = algorithm.sample_options
    for key in options:
        if key not in supported:
            offer = (
                f"it supports: {', '.join(f'{k}=' for k in supported)}"
                if supported
                else "it takes no options (plain samples only)"
            )
            users = sample_option_table().get(key, (None, "", []))[2]
            where = f" ({key}= is for: {', '.join(users)})" if users else ""
            raise GanError(
                f"{key}= is not a sampling option of model '{model}' ({type(algorithm).__name__}); {offer}.{where}"
            )
        formats = supported[key].formats
        if fmt is not None and formats and fmt not in formats:
            raise GanError(f"{key}= draws {' or '.join(formats)} output, not format={fmt}; use format={formats[0]}.")


def in_data_units(panel: Panel) -> torch.Tensor:
    """A panel's samples as the data holds them: images from the networks' [-1, 1] to [0, 1]; the families
    already return sequences (unscaled) and points in their data's units."""
    if panel.kind == "image":
        return (panel.data.float().clamp(-1, 1) + 1) / 2
    return panel.data.float()


def _python_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """`class_=3` (Python's keyword) is the `class=3` of `gan sample`; unset options (None, False) are dropped,
    as the command drops them."""
    out = {}
    for key, value in options.items():
        key = key[:-1] if key.endswith("_") else key
        if value is not None and value is not False:
            out[key] = value
    return out


class Model:
    """A trained gancli model: `load(path)` builds one. Its networks are in eval mode on `device`."""

    def __init__(self, algorithm: Algorithm, spec: DataSpec, state: dict, path: Path, ema: bool = True):
        self.algorithm, self.spec, self.path = algorithm, spec, path
        self.step = int(state["step"])
        self._config = state["config"]
        #: whether the sampling networks are the run's averaged (EMA) copies
        self.ema = ema and any(k in algorithm.sample_nets for k in state.get("ema") or {})

    # -- what it is ------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The model preset it was trained as (dcgan, stylegan2, cyclegan, ...)."""
        return str(self._config["model"]["name"])

    @property
    def config(self) -> dict:
        """The run's whole config as plain data (a copy: changing it changes nothing here)."""
        return copy.deepcopy(self._config)

    @property
    def nets(self) -> Mapping[str, nn.Module]:
        """The networks by name (G, D, E, G_AB, ...); the sampling ones are the EMA copies when loaded so."""
        return MappingProxyType(self.algorithm.nets)

    @property
    def device(self) -> torch.device:
        return self.algorithm.device

    @property
    def sample_options(self) -> tuple[str, ...]:
        """What `sample(**options)` accepts for this family (as `gan sample` does; `class_` for class)."""
        return tuple(self.algorithm.sample_options)

    def __repr__(self) -> str:
        nets = ", ".join(f"{k} {sum(p.numel() for p in m.parameters()) / 1e6:.2f}M" for k, m in self.nets.items())
        return f"<gancli Model {self.name} step {self.step} on {self.device}: {nets}; data {self.spec.describe()}>"

    # -- sampling --------------------------------------------------------------------------------
    def sample_panels(
        self,
        n: int = 64,
        seed: int = 0,
        nrow: int = 8,
        batch_size: int = 256,
        grid: bool = False,
        fmt: str | None = None,
        **options,
    ) -> dict[str, Panel]:
        """The family's panels, as `gan sample` writes them (samples in the networks' range, with each
        sample's conditions in `meta`). grid: the layout of a picture rather than of bulk samples."""
        if n < 1 or batch_size < 1 or nrow < 1:
            raise GanError(f"n={n}, batch_size={batch_size}, nrow={nrow}: each must be at least 1.")
        options = _python_options(options)
        check_options(self.algorithm, options, self.name, fmt)
        gen = torch.Generator().manual_seed(int(seed))
        return self.algorithm.sample(options, int(n), int(nrow), gen, int(batch_size), grid=grid)

    def sample(self, n: int = 64, seed: int = 0, batch_size: int = 256, **options) -> Any:
        """n samples in the data's units, the same as `gan sample ... seed=<seed>` writes. Options are the
        family's `gan sample` options (class_=3, trunc=0.7, interpolate=True, traverse='c1', ...). A mode
        that draws one set gives a tensor; one that draws several (a translator's input / output / target)
        a dict of them by name."""
        panels = self.sample_panels(n, seed, batch_size=batch_size, **options)
        out = {name: in_data_units(p) for name, p in panels.items()}
        return next(iter(out.values())) if len(out) == 1 else out

    # -- encoders --------------------------------------------------------------------------------
    def _require(self, capability: type, needs: str, models: str) -> Any:
        """The algorithm when it has `capability` (a protocol of core.capabilities), else one message naming
        the models that have it."""
        if not isinstance(self.algorithm, capability):
            raise GanError(f"{needs} ({models}); {self.path} was trained as {self.name}, which is not one of them.")
        return self.algorithm

    def check_encoder(self) -> Any:
        """The encoder family, or the message that this model has none."""
        needs = "encoding (gan encode, or encode / reconstruct in Python) needs a model with an encoder"
        return self._require(Encodes, needs, ENCODERS)

    def model_input(self, x: torch.Tensor, field: Any = None, what: str = "this model") -> torch.Tensor:
        """Data units (or uint8 images) → the networks' range, checked against the shape of `field` (by default
        the data's x, what the model was made for)."""
        if field is None:
            field = self.spec["x"] if "x" in self.spec else None
        if field is not None and tuple(x.shape[1:]) != tuple(field.shape):
            raise GanError(
                f"inputs of shape {tuple(x.shape)}: {what} takes {field.describe()} per sample, "
                f"so (N, {', '.join(map(str, field.shape))})."
            )
        if field is None or field.kind != "image":
            return x.float()
        return to_float_image(x) if x.dtype == torch.uint8 else x.float() * 2 - 1  # [0, 1] or [0, 255] → [-1, 1]

    def encode(self, x: torch.Tensor, batch_size: int = 256, hidden: bool = False) -> dict[str, torch.Tensor]:
        """Codes of inputs in the data's units: {"z": (N, d), ...the family's other codes (AAE's y, cluster)};
        hidden: also "h", the encoder's last hidden layer (the features its code head reads: BiGAN's 1-NN)."""
        return self.check_encoder().encode(self.model_input(x), batch_size=batch_size, hidden=hidden)

    def reconstruct(self, x: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 256) -> torch.Tensor:
        """Decoded codes of x, in the data's units (the supervised AAE's decoder also takes the labels)."""
        rec = self.check_encoder().reconstruct(self.model_input(x), labels, batch_size=batch_size)
        return in_data_units(Panel(self.spec["x"].kind, rec))

    @torch.no_grad()
    def predict_codes(self, x: torch.Tensor, batch_size: int = 256) -> dict[str, torch.Tensor]:
        """InfoGAN: the codes its Q network reads back from images in [0, 1] (or uint8): {"categorical": (N,)
        the most likely category, "continuous": (N, k) the means}, those the model has."""
        coder = self.algorithm
        if not isinstance(coder, PredictsCodes):
            raise GanError(f"predict_codes reads InfoGAN's codes back; {self.name} has no Q network.")
        return read_codes(coder, self.model_input(x), batch_size)

    # -- translators -----------------------------------------------------------------------------
    def check_translator(self) -> Any:
        """The translation family, or the message that this model is none."""
        needs = "translation (gan translate, or translate in Python) needs a translation model"
        return self._require(Translates, needs, TRANSLATORS)

    def translate(self, x: torch.Tensor, direction: str | None = None, batch_size: int = 64) -> torch.Tensor:
        """Images of one domain in [0, 1] (or uint8) → the other's, in [0, 1]. direction: AtoB (the default)
        or BtoA, for the models that learned both (cyclegan)."""
        translator = self.check_translator()
        direction = translator.check_direction(direction)
        x = self.model_input(x, translator.input_field(direction), direction)
        out = translator.translate(x, direction, batch_size=batch_size)
        return in_data_units(Panel("image", out))


def load(path: str | Path, device: str = "auto", ema: bool = True) -> Model:
    """The model of a run dir (its checkpoints/last.pt) or of a checkpoint file, on `device` (auto, cpu,
    cuda, cuda:N, mps). ema: the averaged networks where the run kept them (what `gan sample` uses)."""
    algorithm, spec, state = load_for_sampling(path, select_device(device), ema)
    return Model(algorithm, spec, state, Path(path), ema)
