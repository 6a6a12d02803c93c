"""Adversarial autoencoders (Makhzani et al. 2016): an autoencoder whose codes are matched to a prior by
a GAN played in latent space. Each iteration runs the paper's phases in order: reconstruction (encoder
and decoder), then regularisation (D on z tells prior draws from codes; then the encoder plays G).

This module is the paper's §2–§4 uses of a single code z: any prior (Gaussian, the 10-Gaussian mixture,
the swiss roll, uniform); label information in the prior (`model.prior_labels`: D sees the one-hot label,
with one more state for unlabelled data, and the label picks the prior's part); and the supervised
style / content split (`model.condition.decoder=onehot`: the decoder gets the label, so z keeps only the
style). `model.optimizers`: one optimizer per network (`per_network`, the reference reproduction's: the
encoder's Adam state is shared by every phase that moves it, and each network's gradients are clipped on
their own with `optimizer.clip_norm`) or one per phase (`per_phase`: reconstruction, D, the encoder as G,
each with its own state). The categorical-code uses (semi-supervised, clustering, dimensionality reduction) are in
`aae_categorical`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gancli.algorithms.base import ALGORITHMS
from gancli.algorithms.encoding import EncodingAlgorithm
from gancli.algorithms.optim import build_optimizer
from gancli.algorithms.priors import build_prior
from gancli.core.errors import GanError
from gancli.core.rules import NONNEG, integer, one_of
from gancli.losses import plain_loss
from gancli.nets import build_discriminator, build_generator
from gancli.nets.encoder import build_encoder, latent_field

OPTIMIZER_LAYOUTS = ("per_network", "per_phase")

LABELLED_DATASETS = "mnist, fashion_mnist, shapes, cifar10, or image_folder with one sub-folder per class"


class LabelledSubset:
    """The training samples that keep their labels when only some do (`model.labelled`: how many): the
    same per-class share of the dataset's fixed reference spread for every seed, held on the device. Its
    batches are drawn from a generator seeded by the step, so a resumed run draws what the straight one did."""

    def __init__(self, cfg, count: int, num_classes: int, device: torch.device, seed: int):
        from gancli.data.base import build_dataset

        pool = build_dataset(cfg.dataset).reference(max(count * 6, 2000))
        x, y = pool["x"], pool["y"]
        per_class, extra = divmod(count, num_classes)
        keep = []
        for c in range(num_classes):
            idx = (y == c).nonzero().flatten()
            keep.append(idx[: per_class + (1 if c < extra else 0)])
        keep = torch.cat(keep).sort().values
        if len(keep) < count:
            raise GanError(
                f"model.labelled={count}: the dataset has too few samples of some class to keep "
                f"{count} labels balanced over {num_classes} classes; lower model.labelled."
            )
        self.x, self.y = x[keep].to(device), y[keep].to(device)
        self.seed = seed

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, n: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        idx = torch.randint(0, len(self.y), (n,), generator=g).to(self.y.device)
        return self.x[idx], self.y[idx]


class KeepsLabelledPart:
    """For families that learn from `self.labelled` labelled samples: the subset, read at the first step that
    needs it (sampling and encoding never do)."""

    _subset: LabelledSubset | None = None

    def subset(self) -> LabelledSubset:
        if self._subset is None:
            self._subset = LabelledSubset(
                self.cfg, int(self.labelled), self.num_classes, self.device, int(self.cfg.get("seed", 0))
            )
        return self._subset


def per_network(cfg) -> bool:
    """model.optimizers=per_network (a config without the key: per_phase, what gancli did before it)."""
    return str(cfg.model.get("optimizers", "per_phase")) == "per_network"


def phase_optimizers(optimizers: dict, phase: str, autoencoder: tuple[str, ...]) -> list:
    """The optimizers that step in `phase` (autoencoder, D, encoder, classifier): the phase's own in the
    per-phase layout, else those of the networks it moves."""
    if "decoder" not in optimizers:  # per-phase layout: one optimizer per phase
        return [optimizers[phase]]
    if phase == "autoencoder":
        return [optimizers[k] for k in autoencoder]
    if phase == "D":
        return [o for k, o in optimizers.items() if k.startswith("D")]
    return [optimizers["encoder"]]  # the encoder as G, and the classification phase


def noisy_judge(D, std: float):
    """D's logits on codes (with an optional label), with Gaussian noise of std `model.d_input_noise` added to
    what it sees: the reference reproduction's D starts with such a layer (0.3); 0: none."""
    if not std:
        return lambda c, *labels: D(c, *labels)[0]
    return lambda c, *labels: D(c + std * torch.randn_like(c), *labels)[0]


def reconstruction_loss(rec: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The paper's Euclidean reconstruction cost: mean squared error per element."""
    return F.mse_loss(rec.float(), x.float())


@ALGORITHMS.register("aae")
class AAE(KeepsLabelledPart, EncodingAlgorithm):
    data_fields = {"x": ("image", "points")}
    data_doc = "encodes a sample field 'x' (images or points)"
    config_rules = {
        "model.prior": one_of("normal", "uniform", "mixture", "swiss_roll"),
        "model.prior_labels": one_of("false", "true", "False", "True"),
        "model.labelled": integer(0, null=True),
        "model.condition.decoder": one_of("none", "onehot"),
        "model.optimizers": one_of(*OPTIMIZER_LAYOUTS),
        "model.d_input_noise": NONNEG,
    }
    ema_nets = ("decoder",)

    def __init__(self, cfg, spec, device, precision):
        super().__init__(cfg, spec, device, precision)
        m = cfg.model
        self.z_dim = int(m.z_dim)
        self.d_noise = float(m.get("d_input_noise", 0.0))
        self.prior = build_prior(str(m.prior))
        why = self.prior.fits(self.z_dim)
        if why:
            raise GanError(f"model.prior={m.prior}: {why}")
        cond = m.get("condition") or {}
        self.decoder_labels = str(cond.get("decoder", "none")) != "none"
        self.labels_in_prior = bool(m.get("prior_labels", False))
        if self.labels_in_prior and not self.prior.components:
            raise GanError(
                f"model.prior_labels=true lets the label pick a part of the prior, but the {m.prior} "
                "prior has no parts: use model.prior=mixture or swiss_roll."
            )
        uses_labels = self.decoder_labels or self.labels_in_prior
        if uses_labels and not self.num_classes:
            raise GanError(
                f"model '{m.name}' uses class labels (model.prior_labels or model.condition.decoder), but "
                f"dataset '{cfg.dataset.name}' has none; use a labelled dataset ({LABELLED_DATASETS})."
            )
        if self.labels_in_prior and self.num_classes > self.prior.components:
            raise GanError(
                f"model.prior_labels=true: the {m.prior} prior has {self.prior.components} parts, fewer "
                f"than the dataset's {self.num_classes} classes."
            )
        self.labelled = m.get("labelled")
        if self.labelled is not None and not self.labels_in_prior:
            raise GanError(
                f"model.labelled={self.labelled} keeps some labels for the prior, which only "
                "model.prior_labels=true uses; set it, or model.labelled=null."
            )
        if self.labelled is not None and int(self.labelled) < 1:
            raise GanError(f"model.labelled={self.labelled}: keep at least one label (null: every sample's).")
        self.nets = self.build_nets(cfg)
        self.optimizers = self.build_optimizers(cfg)
        self.loss = plain_loss(cfg)

    # -- construction -----------------------------------------------------------------------------
    def build_nets(self, cfg) -> dict:
        m = cfg.model
        dec_cond = "onehot" if self.decoder_labels else "none"
        return {
            "encoder": build_encoder(m.encoder, self.field, self.z_dim).to(self.device),
            "decoder": build_generator(m.decoder, self.field, self.z_dim, self.num_classes, dec_cond).to(self.device),
            # D on z; with labels in the prior it also sees the one-hot label, plus one state for "unlabelled"
            "D": build_discriminator(
                m.discriminator,
                latent_field(self.z_dim),
                self.num_classes + 1 if self.labels_in_prior else 0,
                "concat" if self.labels_in_prior else "none",
            ).to(self.device),
        }

    def build_optimizers(self, cfg) -> dict:
        E, Dec = self.nets["encoder"], self.nets["decoder"]
        if per_network(cfg):
            return {
                "encoder": build_optimizer(cfg.optimizer, E.parameters(), "g"),
                "decoder": build_optimizer(cfg.optimizer, Dec.parameters(), "g"),
                "D": build_optimizer(cfg.optimizer, self.nets["D"].parameters(), "d"),
            }
        return {
            "autoencoder": build_optimizer(cfg.optimizer, [*E.parameters(), *Dec.parameters()], "g"),
            "D": build_optimizer(cfg.optimizer, self.nets["D"].parameters(), "d"),
            "encoder": build_optimizer(cfg.optimizer, E.parameters(), "g"),
        }

    @property
    def latent_dim(self) -> int:
        return self.z_dim

    def prior_takes_labels(self) -> bool:
        return self.labels_in_prior

    # -- one iteration ----------------------------------------------------------------------------
    def _prior_labels(self, batch, step: int):
        """(x, the label each code is judged with: a class, or num_classes for "unlabelled") of this
        step's regularisation phase: the stream's batch, all labelled unless only `model.labelled` are; those
        then come as a second batch of the labelled subset."""
        x = batch["x"]
        if self.labelled is None:
            return x, batch["y"]
        xl, yl = self.subset().batch(len(x), step)
        unlabelled = torch.full((len(x),), self.num_classes, dtype=torch.long, device=x.device)
        return torch.cat([x, xl]), torch.cat([unlabelled, yl])

    def train_step(self, next_batch, step):
        batch = next_batch()
        x = batch["x"]
        E, Dec, D = self.nets["encoder"], self.nets["decoder"], self.nets["D"]
        # reconstruction phase: encoder and decoder
        with self.precision.autocast():
            z = E(x)
            rec = Dec(z, batch["y"]) if self.decoder_labels else Dec(z)
            loss_rec = reconstruction_loss(rec, x)
        self.precision.step(
            "autoencoder", loss_rec, phase_optimizers(self.optimizers, "autoencoder", ("encoder", "decoder"))
        )
        # regularisation phase: D tells prior draws from codes, then the encoder fools it
        xr, d_labels = self._prior_labels(batch, step) if self.labels_in_prior else (x, None)
        parts = None
        if d_labels is not None:
            parts = torch.where(d_labels < self.num_classes, d_labels, torch.full_like(d_labels, -1))
        prior = self.prior.draw((len(xr), self.z_dim), self.device, labels=parts)
        judge = noisy_judge(D, self.d_noise)
        with self.precision.autocast():
            with torch.no_grad():
                codes = E(xr)
            loss_d = self.loss.d_loss(judge(prior, d_labels), judge(codes, d_labels))
        self.precision.step("D", loss_d, phase_optimizers(self.optimizers, "D", ()))
        D.requires_grad_(False)
        with self.precision.autocast():
            loss_g = self.loss.g_loss(judge(E(xr), d_labels))
        self.precision.step("encoder", loss_g, phase_optimizers(self.optimizers, "encoder", ()))
        D.requires_grad_(True)
        return {"loss/reconstruction": loss_rec.detach(), "loss/D": loss_d.detach(), "loss/G": loss_g.detach()}

    def ema_forward(self, nets, next_batch, n, generator):
        codes = self.prior_codes(n, generator, torch.randint(0, max(self.num_classes, 1), (n,), generator=generator))
        self.decode_batch({k: v.to(self.device) for k, v in codes.items()}, nets)

    # -- the encoding contract --------------------------------------------------------------------
    def encode_batch(self, x, nets):
        return {"z": nets["encoder"](x, sample=False)}

    def decode_batch(self, codes, nets):
        Dec = nets["decoder"]
        return Dec(codes["z"], codes["y"]) if self.decoder_labels else Dec(codes["z"])

    def prior_codes(self, n, generator, labels=None):
        codes = {
            "z": self.prior.draw((n, self.z_dim), generator=generator, labels=labels if self.labels_in_prior else None)
        }
        if self.decoder_labels:
            codes["y"] = labels if labels is not None else torch.randint(0, self.num_classes, (n,), generator=generator)
        return codes
