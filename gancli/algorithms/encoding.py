"""What the families with an encoder share (AAE, ALI, BiGAN): the contract of `gan encode` and of
`gan sample reconstruct=`, decoding prior draws, and the latent-space pictures.

A family implements `encode_batch` (x → named codes, "z" first), `decode_batch` (codes → x) and
`prior_codes` (n draws from the latent prior); everything here is written on those three.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn

from gancli.algorithms.base import Algorithm, SampleOption, generate_in_batches
from gancli.algorithms.export import Export, data_units
from gancli.algorithms.gan_sampling import class_index, classes_or_fail
from gancli.algorithms.priors import Prior, build_prior
from gancli.core.errors import GanError
from gancli.core.rules import one_of
from gancli.viz.panel import Panel

SCATTER_N = 2000  # encoded reference samples in a latent scatter
MANIFOLD_SIDE = 12  # decoded grid over a 2-D prior


class EncodingAlgorithm(Algorithm):
    """An encoder E: x → z beside a decoder / generator G: z → x."""

    sample_nets = ("encoder", "decoder")
    config_rules = {"model.encoder.kind": one_of("deterministic", "gaussian")}
    sample_options = {
        "reconstruct": SampleOption(
            str,
            "encoder families: an image, a folder or an npz, or test / train (that "
            "split of the dataset): input | reconstruction rows",
        ),
        "class": SampleOption(
            Any,
            "conditional models: an index or class name (class=3, class=star), or all "
            "(png: one row of nrow per class; bulk: classes spread evenly over n)",
        ),
    }
    #: the decoder takes a class label beside the code (AAE's supervised use)
    decoder_labels = False
    #: the prior of the codes z (a family with a configurable prior sets its own)
    prior: Prior = build_prior("normal")

    # -- what a family provides -------------------------------------------------------------------
    def encode_batch(self, x: torch.Tensor, nets: Mapping[str, nn.Module]) -> dict[str, torch.Tensor]:
        """Codes of a batch of inputs (on the device): {"z": (B, latent_dim), ...any other named codes}."""
        raise NotImplementedError

    def decode_batch(self, codes: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module]) -> torch.Tensor:
        """Samples from codes as `encode_batch` returns them (and "y", the label, where the decoder takes one)."""
        raise NotImplementedError

    def prior_codes(self, n: int, generator: torch.Generator, labels: torch.Tensor | None = None) -> dict:
        """n draws from the latent prior as decode_batch reads them (on the CPU)."""
        raise NotImplementedError

    @property
    def field(self):
        return self.spec["x"]

    @property
    def num_classes(self) -> int:
        y = self.spec.fields.get("y")
        return y.num_classes if y is not None else 0

    # -- the shared contract ----------------------------------------------------------------------
    def hidden_batch(self, x: torch.Tensor, nets: Mapping[str, nn.Module]) -> torch.Tensor:
        """The encoder's last hidden layer (B, features): what its code head reads. BiGAN's paper scores this
        layer (its code's `NNC_e-`), beside the code itself."""
        return nets["encoder"].body(x).flatten(1)

    @torch.no_grad()
    def encode(
        self,
        x: torch.Tensor,
        nets: Mapping[str, nn.Module] | None = None,
        batch_size: int = 256,
        hidden: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Inputs in the model's range (N, ...) on the CPU → named codes (N, ...) on the CPU, batch by batch;
        hidden: also "h", the encoder's last hidden layer (`hidden_batch`)."""
        nets = nets or self.nets
        out: dict[str, list[torch.Tensor]] = {}
        for i in range(0, len(x), batch_size):
            with self.precision.autocast():
                xb = x[i : i + batch_size].to(self.device)
                codes = self.encode_batch(xb, nets)
                if hidden:
                    codes["h"] = self.hidden_batch(xb, nets)
            for k, v in codes.items():
                out.setdefault(k, []).append(v.float().cpu())
        return {k: torch.cat(v) for k, v in out.items()}

    @torch.no_grad()
    def decode(
        self, codes: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module] | None = None, batch_size: int = 256
    ) -> torch.Tensor:
        nets = nets or self.nets

        def run(b):
            with self.precision.autocast():
                return self.decode_batch({k: v.to(self.device) for k, v in b.items()}, nets).float()

        return generate_in_batches(run, dict(codes), batch_size)

    def reconstruct(
        self,
        x: torch.Tensor,
        labels: torch.Tensor | None = None,
        nets: Mapping[str, nn.Module] | None = None,
        batch_size: int = 256,
    ) -> torch.Tensor:
        codes = self.encode(x, nets, batch_size)
        if self.decoder_labels:
            if labels is None:
                raise GanError(
                    "this model's decoder takes the class beside the code (the supervised AAE), so "
                    "reconstructing needs labelled inputs: reconstruct=test / train, or an npz with "
                    "`labels`."
                )
            codes["y"] = labels
        return self.decode(codes, nets, batch_size)

    def sample(self, options, n, nrow, generator, batch_size, grid=True, nets=None):
        wanted = options.get("class")
        if options.get("reconstruct"):
            if wanted is not None:
                raise GanError(
                    "class= picks the class of decoded prior draws; reconstruct= decodes the inputs' own "
                    "codes, so the two cannot be combined."
                )
            return self._reconstruction_panels(str(options["reconstruct"]), n, nrow, batch_size, nets)
        labels = None
        if wanted is not None:
            classes = classes_or_fail(self.sample_classes(), wanted)
            if str(wanted) == "all" and grid:
                n, labels = nrow * classes, torch.arange(classes).repeat_interleave(nrow)
            elif str(wanted) == "all":
                labels = torch.arange(n) % classes
            else:
                labels = torch.full((n,), class_index(wanted, classes, self.class_names()), dtype=torch.long)
        elif self.decoder_labels:
            labels = torch.randint(0, self.num_classes, (n,), generator=generator)
        codes = self.prior_codes(n, generator, labels)
        if str(wanted) == "all" and grid and self.decoder_labels and not self.prior_takes_labels():
            # z holds only the style: one style per column, drawn across every class (the paper's figure)
            codes["z"] = codes["z"][:nrow].repeat(n // nrow, 1)
        x = self.decode(codes, nets, batch_size)
        meta = {"z": codes["z"]} | ({"labels": labels} if labels is not None else {})
        return {"samples": Panel(self.field.kind, x, nrow, meta)}

    def sample_classes(self) -> int:
        """How many values `class=` can pick from: the decoder's classes, or the prior's labelled parts."""
        return self.num_classes if self.decoder_labels or self.prior_takes_labels() else 0

    def prior_takes_labels(self) -> bool:
        return False

    def class_names(self) -> tuple[str, ...]:
        return tuple(self.spec["y"].class_names) if self.num_classes else ()

    def _reconstruction_panels(self, source: str, n: int, nrow: int, batch_size: int, nets) -> dict[str, Panel]:
        from pathlib import Path

        from gancli.data.base import as_model_input, split_reference
        from gancli.data.files import read_images

        if source in ("test", "train"):
            ref = split_reference(self.cfg.dataset, n, source)
            x, labels = ref["x"][:n], ref.get("y")
        else:
            if self.field.kind != "image":
                raise GanError(
                    f"reconstruct={source}: this model encodes {self.field.describe()}, so it reads "
                    "reconstruct=test or train (its dataset's split), not files."
                )
            images, _, labels = read_images(
                Path(source).expanduser(), self.field.shape[0], self.field.shape[-1], "reconstruct="
            )
            x = as_model_input(images)
        labels = labels[: len(x)] if labels is not None else None
        rec = self.reconstruct(x, labels, nets, batch_size)
        return {"input": Panel(self.field.kind, x, nrow), "reconstruction": Panel(self.field.kind, rec, nrow)}

    # -- export -----------------------------------------------------------------------------------
    def export(self, options=None) -> Export:
        """The decoder alone (no encoder): codes z, and the label where the decoder reads one (the supervised
        AAE's class, the categorical AAE's cluster), to samples in the data's units, as `gan sample` decodes
        prior draws."""
        takes_labels = "y" in self.prior_codes(1, torch.Generator().manual_seed(0))
        k = self.sample_classes()

        def draw(n, gen):
            codes = self.prior_codes(n, gen, torch.randint(0, k, (n,), generator=gen) if k else None)
            return {"z": codes["z"], **({"labels": codes["y"]} if takes_labels else {})}

        def run(nets, x):
            codes = {"z": x["z"], **({"y": x["labels"]} if takes_labels else {})}
            return data_units(self.decode_batch(codes, nets), self.field)

        about = {"z": f"code, {self.prior.about}"}
        if takes_labels:
            about["labels"] = f"{self.label_meaning()}, 0 to {k - 1}"
        return Export.of(
            {name: self.nets[name] for name in self.sample_nets if name != "encoder"},
            run,
            about,
            draw=draw,
            output=self.field,
            classes=k if takes_labels else 0,
            class_names=self.class_names() if takes_labels else (),
        )

    def label_meaning(self) -> str:
        """What the label beside the code is, for exported decoders' contracts."""
        return "class index"

    # -- training pictures ------------------------------------------------------------------------
    def panels(self, reference, nets, generator, n):
        shown = reference["x"][:n]
        labels = reference.get("y")
        panels = {
            "input": Panel(self.field.kind, shown, 8),
            "reconstruction": Panel(
                self.field.kind, self.reconstruct(shown, labels[:n] if labels is not None else None, nets), 8
            ),
        }
        draw_labels = torch.arange(n) % self.num_classes if self.decoder_labels else None
        codes = self.prior_codes(n, generator, draw_labels)
        panels["samples"] = Panel(self.field.kind, self.decode(codes, nets), 8)
        if self.latent_dim == 2:
            test = self._scatter_split()
            panels["latent"] = self.latent_scatter(test["x"], test.get("y"), nets)
            manifold = self.manifold(nets)
            if manifold is not None:
                panels["manifold"] = manifold
        return panels

    def _scatter_split(self) -> dict:
        """SCATTER_N samples of the test split (a fresh draw for procedural data), read once per run."""
        if getattr(self, "_scatter", None) is None:
            from gancli.data.base import split_reference

            self._scatter = split_reference(self.cfg.dataset, SCATTER_N, "test")
        return self._scatter

    def manifold(self, nets=None) -> Panel | None:
        """Images decoded on a regular grid over a 2-D prior's extent (its 1st to 99th percentile in each
        coordinate): every part of the prior should decode to something meaningful. None where the decoder
        needs more than z (a label, a categorical code)."""
        if self.decoder_labels or self.field.kind != "image":
            return None
        draws = self.prior_codes(4000, torch.Generator().manual_seed(0))
        if set(draws) != {"z"}:
            return None
        lo, hi = torch.quantile(draws["z"], 0.01, dim=0), torch.quantile(draws["z"], 0.99, dim=0)
        t = torch.linspace(0, 1, MANIFOLD_SIDE)
        xs, ys = lo[0] + (hi[0] - lo[0]) * t, hi[1] - (hi[1] - lo[1]) * t  # rows top to bottom: y falls
        grid = torch.stack([xs.repeat(MANIFOLD_SIDE), ys.repeat_interleave(MANIFOLD_SIDE)], 1)
        return Panel("image", self.decode({"z": grid}, nets), MANIFOLD_SIDE)

    def latent_scatter(self, x: torch.Tensor, labels: torch.Tensor | None, nets=None) -> Panel:
        """The AAE paper's figure: encoded data coloured by class over prior draws (grey)."""
        z = self.encode(x, nets)["z"]
        prior = self.prior_codes(len(x), torch.Generator().manual_seed(0))["z"]
        meta = {"labels": labels} if labels is not None else {}
        return Panel("latent", z, 8, meta, overlay=prior)

    @property
    def latent_dim(self) -> int:
        raise NotImplementedError
