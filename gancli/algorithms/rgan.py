"""RGAN and RCGAN (Esteban, Hyland & Rätsch 2017): the GAN family on sequences. G is a recurrent network
that reads a latent vector at every time step; D gives a real/fake logit at every step, and both losses
are the configured adversarial loss averaged over all steps (the paper: sigmoid cross-entropy). RCGAN
concatenates the class to both networks' inputs at every step (`model.condition.*`).

Everything else is the GAN family's: n_critic and g_steps, penalties (the gradient is taken with respect to the whole
sequence), instance noise, label smoothing, feature matching on D's last hidden state, EMA. What needs an
image or a per-sample head is refused (DiffAugment, packing, minibatch std, projection).

Samples leave the model in the data's own units: the dataset's scale is in its field's extras (and so in
the checkpoint), and panels and sample files are unscaled with it.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from gancli.algorithms import gan_sampling
from gancli.algorithms.base import ALGORITHMS
from gancli.algorithms.gan import GAN
from gancli.core.errors import GanError
from gancli.core.rules import one_of
from gancli.data.sequences import unscale
from gancli.nets.recurrent import INITS, RecurrentCritic, RecurrentGenerator
from gancli.viz.panel import Panel


def _net_keys(node, role: str) -> dict:
    """The recurrent network's keys (cell, hidden, layers, tanh / bidirectional); other archs do not apply."""
    from omegaconf import OmegaConf

    keys = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
    arch = keys.pop("arch", "recurrent")
    if arch != "recurrent":
        raise GanError(
            f"model.{role}.arch={arch}: the sequence families use arch=recurrent (keys: cell lstm | gru, "
            "hidden, layers, and tanh for G, bidirectional for D)."
        )
    return keys


@ALGORITHMS.register("rgan")
class RGAN(GAN):
    sample_options = {"class": gan_sampling.OPTIONS["class"]}

    data_fields = {"x": ("sequence",)}
    data_doc = "trains on sequences (a field 'x' of kind sequence: sines, smooth, mnist_seq, timeseries_file)"
    config_rules = {"model.generator.init": one_of(*INITS), "model.discriminator.init": one_of(*INITS)}

    def __init__(self, cfg, spec, device, precision):
        tricks = cfg.get("tricks") or {}
        for key, what in (("pack", "packing"), ("minibatch_std", "minibatch std")):
            if int(tricks.get(key, 0) or 0) > (1 if key == "pack" else 0):
                raise GanError(
                    f"tricks.{key}: {what} works on a per-sample critic head; {cfg.model.name}'s D judges "
                    f"every time step. Use tricks.{key}={1 if key == 'pack' else 0}."
                )
        cond = cfg.model.get("condition") or {}
        if cond.get("discriminator", "none") == "projection":
            raise GanError(
                "model.condition.discriminator=projection needs a per-sample critic; recurrent D takes "
                "the class at every step: use concat."
            )
        super().__init__(cfg, spec, device, precision)

    # -- networks ---------------------------------------------------------------------------------
    def build_generator(self, nets, cond: dict) -> nn.Module:
        return RecurrentGenerator(
            self.field,
            self.z_dim,
            num_classes=self.num_classes,
            condition=self.g_condition,
            embed_dim=int(cond.get("embed_dim", 0) or 0),
            **_net_keys(nets.generator, "generator"),
        )

    def build_discriminator(self, nets, cond: dict, group: int, pack: int) -> nn.Module:
        return RecurrentCritic(
            self.field,
            num_classes=self.num_classes if self.d_condition != "none" else 0,
            condition=self.d_condition,
            embed_dim=int(cond.get("embed_dim", 0) or 0),
            **_net_keys(nets.discriminator, "discriminator"),
        )

    # -- what G consumes: noise at every step -----------------------------------------------------
    def latent(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None) -> dict:
        inputs = {"z": self.prior.draw((n, self.field.shape[0], self.z_dim), self.device, generator)}
        if self.num_classes:
            if labels is None:
                labels = self._draw(torch.randint, self.num_classes, (n,), generator=generator)
            inputs["labels"] = labels.to(self.device)
        return inputs

    def input_about(self) -> dict[str, str]:
        about = super().input_about()
        about["z"] = f"noise at each of the {self.field.shape[0]} steps, {self.prior.about}"
        return about

    # -- pictures and samples, in the data's units --------------------------------------------------
    def reference_size(self, n: int) -> int:
        return n

    def panel(self, x: torch.Tensor, nrow: int, meta: dict | None = None, overlay=None) -> Panel:
        field = self.field
        return Panel(
            field.kind,
            unscale(x, field),
            nrow,
            meta or {},
            None if overlay is None else unscale(overlay, field),
            field.extras,
        )
