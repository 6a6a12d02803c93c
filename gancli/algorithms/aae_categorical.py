"""Adversarial autoencoders with a categorical code (Makhzani et al. 2016, §5–§7): the encoder gives a
class-like code y (softmax over `model.clusters`) and a style code z; the decoder reads both; one D
matches y to a one-hot categorical prior and another matches z to N(0, I).

- semi-supervised (`aae_semi`): a classification phase on the labelled part (`model.labelled` samples)
  teaches y the labels; the rest of the data is used without its labels;
- unsupervised clustering (`aae_cluster`): no labels at all, y becomes a cluster assignment;
- dimensionality reduction (`aae_dimred`): the decoder reads W·y + z, W holding one learned n-D
  "cluster head" per cluster, with a cost on heads closer than η, so the n-D code shows the clusters.

Each iteration: reconstruction, regularisation (both Ds, then the encoder fools both), and with labels the
semi-supervised classification phase. With labels and `model.reconstruct_labelled` (the reference
reproduction's), the reconstruction phase also rebuilds the step's labelled batch from its true one-hot y and
its own z, and the classification phase reads that same batch.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from gancli.algorithms.aae import (
    OPTIMIZER_LAYOUTS,
    KeepsLabelledPart,
    noisy_judge,
    per_network,
    phase_optimizers,
    reconstruction_loss,
)
from gancli.algorithms.base import ALGORITHMS
from gancli.algorithms.encoding import EncodingAlgorithm
from gancli.algorithms.optim import build_optimizer
from gancli.core.errors import GanError
from gancli.core.rules import NONNEG, integer, one_of
from gancli.losses import plain_loss
from gancli.nets import build_discriminator, build_generator
from gancli.nets.encoder import build_encoder, latent_field


@ALGORITHMS.register("aae_categorical")
class CategoricalAAE(KeepsLabelledPart, EncodingAlgorithm):
    data_fields = {"x": ("image",)}
    data_doc = "encodes images (field 'x')"
    config_rules = {
        "model.labelled": integer(0, null=True),
        "model.clusters": integer(2, null=True),
        "model.d_input_noise": NONNEG,
        "model.optimizers": one_of(*OPTIMIZER_LAYOUTS),
        "model.reconstruct_labelled": one_of("true", "false", "True", "False"),
    }
    ema_nets = ("decoder",)

    def __init__(self, cfg, spec, device, precision):
        super().__init__(cfg, spec, device, precision)
        m = cfg.model
        self.z_dim, self.clusters = int(m.z_dim), self.cluster_count(m, cfg.dataset.name)
        if self.clusters < 2:  # null follows the dataset, which may have a single class
            raise GanError(f"model.clusters={self.clusters}: the categorical code needs at least 2 values.")
        labelled = int(m.get("labelled") or 0)
        if labelled and not self.num_classes:
            raise GanError(
                f"model.labelled={labelled}: the semi-supervised phase needs class labels, but dataset "
                f"'{cfg.dataset.name}' has none; set model.labelled=0 (clustering) or use a labelled dataset."
            )
        if labelled and self.clusters != self.num_classes:
            raise GanError(
                f"model.clusters={self.clusters}: with model.labelled={labelled}, y is a class and needs "
                f"one value per class of the dataset ({self.num_classes})."
            )
        self.labelled = labelled
        self.reconstruct_labelled = bool(m.get("reconstruct_labelled", False)) and bool(labelled)
        self.nets = {
            "encoder": build_encoder(m.encoder, self.field, self.z_dim, heads={"y": self.clusters}).to(device),
            "decoder": build_generator(m.decoder, self.field, self.decoder_input()).to(device),
            "D_y": build_discriminator(m.discriminator, latent_field(self.clusters)).to(device),
            "D_z": build_discriminator(m.discriminator, latent_field(self.z_dim)).to(device),
        }
        self.nets.update(self.extra_nets(m))
        self.d_noise = float(m.get("d_input_noise", 0.0))
        self.optimizers = self.build_optimizers(cfg)
        self.loss = plain_loss(cfg)

    def cluster_count(self, m, dataset: str) -> int:
        """model.clusters, or with null (aae_semi's default) the dataset's number of classes: y is a class."""
        if m.get("clusters") is not None:
            return int(m.clusters)
        if not self.num_classes:
            raise GanError(
                f"model.clusters=null takes one value of y per class of the dataset, but dataset '{dataset}' "
                "has no class labels; set model.clusters (e.g. model.clusters=16, aae_cluster's)."
            )
        return self.num_classes

    # -- hooks for the dimensionality-reduction variant -------------------------------------------
    def decoder_input(self) -> int:
        return self.clusters + self.z_dim

    def extra_nets(self, m) -> dict:
        return {}

    def decoder_code(self, y: torch.Tensor, z: torch.Tensor, nets) -> torch.Tensor:
        """What the decoder reads from the code pair: [y, z]."""
        return torch.cat([y, z], 1)

    def extra_cost(self) -> dict[str, torch.Tensor]:
        return {}

    def build_optimizers(self, cfg) -> dict:
        n = self.nets
        if per_network(cfg):
            return {k: build_optimizer(cfg.optimizer, n[k].parameters(), "d" if k.startswith("D") else "g") for k in n}
        autoencoder = [p for k in ("encoder", "decoder", *self.extra_nets_names()) for p in n[k].parameters()]
        opts = {
            "autoencoder": build_optimizer(cfg.optimizer, autoencoder, "g"),
            "D": build_optimizer(cfg.optimizer, [*n["D_y"].parameters(), *n["D_z"].parameters()], "d"),
            "encoder": build_optimizer(cfg.optimizer, n["encoder"].parameters(), "g"),
        }
        if self.labelled:
            opts["classifier"] = build_optimizer(cfg.optimizer, n["encoder"].parameters(), "g")
        return opts

    def extra_nets_names(self) -> tuple[str, ...]:
        return ()

    @property
    def latent_dim(self) -> int:
        return self.z_dim

    def sample_classes(self) -> int:
        return self.clusters  # class= picks the categorical code's value

    def class_names(self) -> tuple[str, ...]:
        names = super().class_names()
        return names if len(names) == self.clusters else ()

    def label_meaning(self) -> str:
        return "the categorical code's value (a class with labels, a cluster without)"

    # -- one iteration ----------------------------------------------------------------------------
    def train_step(self, next_batch, step):
        x = next_batch()["x"]
        n = self.nets
        E, Dec = n["encoder"], n["decoder"]
        b = len(x)
        labelled = self.subset().batch(b, step) if self.labelled else None
        # reconstruction phase
        with self.precision.autocast():
            out = E.encode(x)
            y = F.softmax(out["y"].float(), 1)
            loss_rec = reconstruction_loss(Dec(self.decoder_code(y, out["z"], n)), x)
            if self.reconstruct_labelled:  # the labelled batch, decoded from its true class
                xl, yl = labelled
                onehot = F.one_hot(yl, self.clusters).float()
                loss_rec = loss_rec + reconstruction_loss(Dec(self.decoder_code(onehot, E.encode(xl)["z"], n)), xl)
            extra = self.extra_cost()
            total = loss_rec + sum(extra.values()) if extra else loss_rec
        autoencoder = ("encoder", "decoder", *self.extra_nets_names())
        self.precision.step("autoencoder", total, phase_optimizers(self.optimizers, "autoencoder", autoencoder))
        logs = {"loss/reconstruction": loss_rec.detach(), **{k: v.detach() for k, v in extra.items()}}
        # regularisation phase: D_y (one-hot categorical prior) and D_z (Gaussian), then the encoder
        onehot = F.one_hot(torch.randint(0, self.clusters, (b,), device=self.device), self.clusters).float()
        gauss = torch.randn(b, self.z_dim, device=self.device)
        with self.precision.autocast():
            with torch.no_grad():
                out = E.encode(x)
            y_fake, z_fake = F.softmax(out["y"].float(), 1), out["z"]
            Dy, Dz = noisy_judge(n["D_y"], self.d_noise), noisy_judge(n["D_z"], self.d_noise)
            loss_d = self.loss.d_loss(Dy(onehot), Dy(y_fake)) + self.loss.d_loss(Dz(gauss), Dz(z_fake))
        self.precision.step("D", loss_d, phase_optimizers(self.optimizers, "D", ()))
        for d in ("D_y", "D_z"):
            n[d].requires_grad_(False)
        with self.precision.autocast():
            out = E.encode(x)
            loss_g = self.loss.g_loss(Dy(F.softmax(out["y"].float(), 1))) + self.loss.g_loss(Dz(out["z"]))
        self.precision.step("encoder", loss_g, phase_optimizers(self.optimizers, "encoder", ()))
        for d in ("D_y", "D_z"):
            n[d].requires_grad_(True)
        logs.update({"loss/D": loss_d.detach(), "loss/G": loss_g.detach()})
        # semi-supervised classification phase on a labelled minibatch
        if self.labelled:
            xl, yl = labelled
            with self.precision.autocast():
                loss_c = F.cross_entropy(E.encode(xl)["y"].float(), yl)
            self.precision.step("classifier", loss_c, phase_optimizers(self.optimizers, "classifier", ()))
            logs["loss/classification"] = loss_c.detach()
        return logs

    def ema_forward(self, nets, next_batch, n, generator):
        codes = self.prior_codes(n, generator)
        self.decode_batch({k: v.to(self.device) for k, v in codes.items()}, {**self.nets, **nets})

    # -- the encoding contract --------------------------------------------------------------------
    def encode_batch(self, x, nets):
        out = nets["encoder"].encode(x, sample=False)
        probs = F.softmax(out["y"].float(), 1)
        return {"z": out["z"], "y": probs, "cluster": probs.argmax(1)}

    def decode_batch(self, codes, nets):
        y = codes["y"]
        if y.dim() == 1:  # a class index (prior draws, class=) rather than probabilities
            y = F.one_hot(y.long(), self.clusters).float()
        return nets["decoder"](self.decoder_code(y.float(), codes["z"], nets))

    def prior_codes(self, n, generator, labels=None):
        if labels is None:
            labels = torch.randint(0, self.clusters, (n,), generator=generator)
        return {"z": torch.randn(n, self.z_dim, generator=generator), "y": labels}


@ALGORITHMS.register("aae_dimred")
class DimReductionAAE(CategoricalAAE):
    config_rules = {"model.head_distance": NONNEG, "model.head_weight": NONNEG}
    """The decoder reads W·y + z: an n-D code (n = model.z_dim) in which each cluster sits near its own
    learned head W[:, k]; heads closer than η (model.head_distance) pay a cost linear in the shortfall.
    As in the reference reproduction (musyoku/adversarial-autoencoder), the heads start N(0, 1)."""

    sample_nets = ("encoder", "decoder", "heads")

    def decoder_input(self) -> int:
        return self.z_dim

    def extra_nets(self, m) -> dict:
        heads = nn.Linear(self.clusters, self.z_dim, bias=False)
        nn.init.normal_(heads.weight)  # N(0, 1), as the reference reproduction starts the heads
        self.eta, self.head_weight = float(m.head_distance), float(m.get("head_weight", 1.0))
        return {"heads": heads.to(self.device)}

    def extra_nets_names(self):
        return ("heads",)

    def decoder_code(self, y, z, nets):
        return nets["heads"](y) + z

    def extra_cost(self):
        return {"head_distance": self.head_weight * head_distance_cost(self.nets["heads"].weight.t(), self.eta)}

    def encode_batch(self, x, nets):
        codes = super().encode_batch(x, nets)
        return {"z": nets["heads"](codes["y"]) + codes["z"], "y": codes["y"], "cluster": codes["cluster"]}

    def decode_batch(self, codes, nets):
        if "y" in codes and codes["y"].dim() == 1:  # prior draws: a head plus a style
            return super().decode_batch(codes, nets)
        return nets["decoder"](codes["z"])

    def latent_scatter(self, x, labels, nets=None):
        panel = super().latent_scatter(x, labels, nets)
        panel.overlay = (nets or self.nets)["heads"].weight.t().detach().float().cpu()
        panel.extras = {"overlay_name": "the cluster heads (x)", "overlay_marker": "x"}
        return panel


def head_distance_cost(heads: torch.Tensor, eta: float) -> torch.Tensor:
    """Σ over pairs of heads (K, n) of max(0, η − ‖w_i − w_j‖): zero once every two heads are η apart (the
    reference's −Σ clip(‖w_i − w_j‖, 0, η) up to a constant, so the same gradient)."""
    k = len(heads)
    i, j = torch.triu_indices(k, k, 1)
    d = (heads[i].float() - heads[j].float()).norm(dim=1)
    return F.relu(eta - d).sum()
