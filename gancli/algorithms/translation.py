"""Image-to-image translation: pix2pix (Isola et al. 2017; pix2pixHD's multi-scale D and feature matching
as options) and CycleGAN (Zhu et al. 2017), as the authors' code trains them.

Both read datasets with fields `a` (the input domain) and `b` (the output domain): paired (one order, for
pix2pix) or in two independent orders (CycleGAN). The adversarial terms are the reference GANLoss: the mean
binary cross-entropy on logits (`loss=nonsat`, "vanilla") or the mean squared error to 1 / 0
(`loss=lsgan`), every D loss halved.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F
from omegaconf import OmegaConf

from gancli.algorithms.base import ALGORITHMS, Algorithm, SampleOption, generate_in_batches
from gancli.algorithms.export import Export, data_units
from gancli.algorithms.optim import build_optimizer
from gancli.core.errors import GanError
from gancli.data.base import split_reference
from gancli.nets.translation import (
    ImagePool,
    PatchGAN,
    ResnetGenerator,
    UNet,
    has_test_dropout,
    patch_output_size,
    without_test_dropout,
)
from gancli.viz.panel import Panel

GAN_MODES = {"nonsat": "vanilla", "minimax": "vanilla", "lsgan": "lsgan"}
DIRECTIONS = ("AtoB", "BtoA")


def gan_loss(pred: torch.Tensor, real: bool, mode: str) -> torch.Tensor:
    """The reference GANLoss: BCE with logits against 1 / 0 ("vanilla"), or MSE against 1 / 0 ("lsgan")."""
    target = torch.ones_like(pred) if real else torch.zeros_like(pred)
    if mode == "lsgan":
        return F.mse_loss(pred.float(), target.float())
    return F.binary_cross_entropy_with_logits(pred.float(), target.float())


def _mode(cfg) -> str:
    name = str(cfg.loss.name)
    if name not in GAN_MODES:
        raise GanError(
            f"loss={name}: the translation families use the reference GANLoss, vanilla (loss=nonsat) or "
            "least squares (loss=lsgan)."
        )
    return GAN_MODES[name]


def _fields(cfg, spec, paired: bool):
    a, b = spec["a"], spec["b"]
    together = any({"a", "b"} <= set(g) for g in spec.groups)
    if paired and not together:
        raise GanError(
            f"pix2pix learns from pairs, but dataset '{cfg.dataset.name}' shuffles a and b apart "
            "(unpaired): use model=cyclegan, or a paired dataset."
        )
    return a, b


def _keys(node) -> dict:
    keys = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
    keys.pop("arch", None)
    return keys


class Translator(Algorithm):
    data_fields = {"a": ("image",), "b": ("image",)}
    data_doc = (
        "translates between image fields 'a' and 'b' (paired_folder, unpaired_folder, shapes_paired, "
        "fashion_edges, ...)"
    )
    """What both families share: the translate contract of `gan translate` and test-split sampling."""

    directions: tuple[str, ...] = ("AtoB",)
    sample_options = {
        "split": SampleOption(
            str,
            "translation models: the dataset split whose images are translated "
            "(test by default): npz holds input, output (and target) arrays",
        ),
        "direction": SampleOption(str, "cyclegan: AtoB (default) or BtoA"),
    }

    def check_direction(self, direction: str | None) -> str:
        direction = direction or self.directions[0]
        if direction not in self.directions:
            raise GanError(
                f"direction={direction} is not one this model translates; it knows: {', '.join(self.directions)}."
            )
        return direction

    def input_field(self, direction: str):
        return self.field_a if direction == "AtoB" else self.field_b

    @torch.no_grad()
    def translate(
        self,
        x: torch.Tensor,
        direction: str | None = None,
        nets: Mapping[str, nn.Module] | None = None,
        batch_size: int = 64,
    ) -> torch.Tensor:
        """Inputs in [−1, 1] (N, C, H, W) → outputs in [−1, 1], batch by batch (CPU in, CPU out)."""
        direction = self.check_direction(direction)
        G = (nets or self.nets)[self.generator_for(direction)]
        return generate_in_batches(lambda b: G(b["x"].to(self.device)).float(), {"x": x}, batch_size)

    export_options = {"direction": SampleOption(str, "cyclegan: AtoB (default) or BtoA; one file per direction")}

    def export(self, options=None) -> Export:
        """One direction's generator: images of the input domain in [0, 1] (N, C, H, W) to images of the
        other in [0, 1], as `gan translate` maps pixels / 255."""
        options = options or {}
        direction = self.check_direction(options.get("direction"))
        G = self.export_generator(self.nets[self.generator_for(direction)], options)
        src, dst = (self.field_a, self.field_b) if direction == "AtoB" else (self.field_b, self.field_a)
        return Export.of(
            {"G": G},
            lambda nets, x: data_units(nets["G"](x["image"] * 2 - 1), dst),
            {"image": f"images of domain {direction[0]}, (N, {', '.join(map(str, src.shape))}), in [0, 1]"},
            draw=lambda n, gen: {"image": torch.rand(n, *src.shape, generator=gen)},
            output=dst,
            details={"direction": direction},
            stochastic=has_test_dropout(G),
        )

    def export_generator(self, G: nn.Module, options) -> nn.Module:
        """The generator an export holds (pix2pix may turn its test-time dropout off)."""
        return G

    def sample(self, options, n, nrow, generator, batch_size, grid=True, nets=None):
        direction = self.check_direction(options.get("direction"))
        ref = split_reference(self.cfg.dataset, n, str(options.get("split", "test")))
        src, dst = ("a", "b") if direction == "AtoB" else ("b", "a")
        x = ref[src][:n]
        panels = {
            "input": Panel("image", x, nrow),
            "output": Panel("image", self.translate(x, direction, nets, batch_size), nrow),
        }
        if self.paired and dst in ref:
            panels["target"] = Panel("image", ref[dst][:n], nrow)
        return panels


@ALGORITHMS.register("pix2pix")
class Pix2Pix(Translator):
    ema_nets = ("G",)
    sample_nets = ("G",)
    paired = True

    def __init__(self, cfg, spec, device, precision):
        super().__init__(cfg, spec, device, precision)
        m = cfg.model
        self.field_a, self.field_b = _fields(cfg, spec, paired=True)
        ca, cb, res = self.field_a.shape[0], self.field_b.shape[0], self.field_a.shape[-1]
        self.G = UNet(ca, cb, res, **_keys(m.generator)).to(device)
        d = _keys(m.discriminator)
        self.num_D = int(m.get("num_D", 1))
        if self.num_D < 1:
            raise GanError(f"model.num_D={self.num_D} must be ≥ 1 (pix2pixHD: 2 or 3 scales).")
        layers = int(d.get("n_layers", 3))
        for i in range(self.num_D):
            side = res // 2**i
            if patch_output_size(side, layers) < 1:
                raise GanError(
                    f"model.num_D={self.num_D} with model.discriminator.n_layers={layers}: the D at 1/{2**i} "
                    f"scale sees {side} px, too small for {layers} stride-2 layers; lower num_D or n_layers."
                )
        self.Ds = nn.ModuleList(PatchGAN(ca + cb, **d) for _ in range(self.num_D)).to(device)
        self.nets = {"G": self.G, "D": self.Ds}
        self.optimizers = {
            "G": build_optimizer(cfg.optimizer, self.G.parameters(), "g"),
            "D": build_optimizer(cfg.optimizer, self.Ds.parameters(), "d"),
        }
        self.mode = _mode(cfg)
        self.l1_weight, self.adv_weight = float(m.l1_weight), float(m.get("adv_weight", 1.0))
        self.feat_weight = float(m.get("feat_weight", 0.0))

    def generator_for(self, direction: str) -> str:
        return "G"

    export_options = {
        **Translator.export_options,
        "dropout": SampleOption(
            bool, "pix2pix: keep the U-Net's test-time dropout (default true, as gan translate; false: deterministic)"
        ),
    }

    def export_generator(self, G, options):
        return without_test_dropout(G) if options.get("dropout") is False else G

    def _judge(self, a: torch.Tensor, b: torch.Tensor) -> list[list[torch.Tensor]]:
        """Each scale's D on cat(a, b), downsampled by 2 per scale (pix2pixHD): its layers' outputs, the logits last."""
        x, outs = torch.cat([a, b], 1), []
        for i, D in enumerate(self.Ds):
            h, feats = x, []
            for layer in D.model:
                h = layer(h)
                feats.append(h)
            outs.append(feats)
            if i + 1 < self.num_D:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
        return outs

    def train_step(self, next_batch, step):
        batch = next_batch()
        a, b = batch["a"], batch["b"]
        with self.precision.autocast():
            fake = self.G(a)
        # D: real pairs against fake ones, halved (the reference's 0.5 · (fake + real))
        with self.precision.autocast():
            d_fake = self._judge(a, fake.detach())
            d_real = self._judge(a, b)
            loss_d = (
                0.5
                * sum(
                    gan_loss(f[-1], False, self.mode) + gan_loss(r[-1], True, self.mode) for f, r in zip(d_fake, d_real)
                )
                / self.num_D
            )
        self.precision.step("D", loss_d, self.optimizers["D"])
        # G: fool D, stay close to the target in L1 (λ = 100), match D's features (pix2pixHD)
        self.Ds.requires_grad_(False)
        with self.precision.autocast():
            judged = self._judge(a, fake)
            adv = sum(gan_loss(f[-1], True, self.mode) for f in judged) / self.num_D
            l1 = F.l1_loss(fake.float(), b.float())
            loss_g = self.adv_weight * adv + self.l1_weight * l1
            logs = {"loss/D": loss_d.detach(), "loss/G": adv.detach(), "l1": l1.detach()}
            if self.feat_weight:
                with torch.no_grad():
                    real_feats = self._judge(a, b)
                fm = (
                    sum(
                        F.l1_loss(f.float(), r.float())
                        for fs, rs in zip(judged, real_feats)
                        for f, r in zip(fs[:-1], rs[:-1])
                    )
                    / self.num_D
                )
                loss_g = loss_g + self.feat_weight * fm
                logs["feature_matching"] = fm.detach()
        self.precision.step("G", loss_g, self.optimizers["G"])
        self.Ds.requires_grad_(True)
        return logs

    def ema_forward(self, nets, next_batch, n, generator):
        nets["G"](next_batch()["a"])

    def panels(self, reference, nets, generator, n):
        a, b = reference["a"].to(self.device), reference["b"]
        with torch.no_grad():
            out = nets["G"](a).float().cpu()
        return {"input": Panel("image", a.cpu(), 4), "output": Panel("image", out, 4), "target": Panel("image", b, 4)}


@ALGORITHMS.register("cyclegan")
class CycleGAN(Translator):
    ema_nets = ()
    sample_nets = ("G_AB", "G_BA")
    directions = DIRECTIONS
    paired = False

    def __init__(self, cfg, spec, device, precision):
        super().__init__(cfg, spec, device, precision)
        m = cfg.model
        self.field_a, self.field_b = _fields(cfg, spec, paired=False)
        ca, cb, res = self.field_a.shape[0], self.field_b.shape[0], self.field_a.shape[-1]
        g = _keys(m.generator)
        if g.get("blocks") in (None, "auto"):
            g["blocks"] = 6 if res <= 128 else 9  # the paper: 6 blocks at 128 px, 9 at 256
        d = _keys(m.discriminator)
        self.nets = {
            "G_AB": ResnetGenerator(ca, cb, **g).to(device),
            "G_BA": ResnetGenerator(cb, ca, **g).to(device),
            "D_A": PatchGAN(ca, **d).to(device),
            "D_B": PatchGAN(cb, **d).to(device),
        }
        n = self.nets
        self.optimizers = {
            "G": build_optimizer(cfg.optimizer, [*n["G_AB"].parameters(), *n["G_BA"].parameters()], "g"),
            "D": build_optimizer(cfg.optimizer, [*n["D_A"].parameters(), *n["D_B"].parameters()], "d"),
        }
        self.mode = _mode(cfg)
        self.cycle_weight, self.identity = float(m.cycle_weight), float(m.identity_weight)
        self.adv_weight = float(m.get("adv_weight", 1.0))
        if self.identity and ca != cb:
            raise GanError(
                f"model.identity_weight={self.identity}: the identity term feeds domain B to G_AB, which "
                f"needs both domains to have one channel count (here {ca} and {cb}); set it to 0."
            )
        self.pools = {"A": ImagePool(int(m.pool_size), seed=1), "B": ImagePool(int(m.pool_size), seed=2)}

    def generator_for(self, direction: str) -> str:
        return "G_AB" if direction == "AtoB" else "G_BA"

    def train_step(self, next_batch, step):
        batch = next_batch()
        real_a, real_b = batch["a"], batch["b"]
        n = self.nets
        with self.precision.autocast():
            fake_b, fake_a = n["G_AB"](real_a), n["G_BA"](real_b)
            rec_a, rec_b = n["G_BA"](fake_b), n["G_AB"](fake_a)
        # G_AB and G_BA together: fool both Ds, cycle back to the input (λ_cyc), map a domain to itself (identity)
        for d in ("D_A", "D_B"):
            n[d].requires_grad_(False)
        with self.precision.autocast():
            adv = gan_loss(n["D_B"](fake_b), True, self.mode) + gan_loss(n["D_A"](fake_a), True, self.mode)
            cycle = cycle_loss(rec_a, real_a) + cycle_loss(rec_b, real_b)
            loss_g = self.adv_weight * adv + self.cycle_weight * cycle
            logs = {"loss/G": adv.detach(), "cycle": cycle.detach()}
            if self.identity:
                idt = cycle_loss(n["G_AB"](real_b), real_b) + cycle_loss(n["G_BA"](real_a), real_a)
                loss_g = loss_g + self.cycle_weight * self.identity * idt
                logs["identity"] = idt.detach()
        self.precision.step("G", loss_g, self.optimizers["G"])
        for d in ("D_A", "D_B"):
            n[d].requires_grad_(True)
        # D_A and D_B, on fakes from their pools of 50, each loss halved
        pooled_b, pooled_a = self.pools["B"].query(fake_b), self.pools["A"].query(fake_a)
        with self.precision.autocast():
            loss_db = 0.5 * (
                gan_loss(n["D_B"](real_b), True, self.mode) + gan_loss(n["D_B"](pooled_b), False, self.mode)
            )
            loss_da = 0.5 * (
                gan_loss(n["D_A"](real_a), True, self.mode) + gan_loss(n["D_A"](pooled_a), False, self.mode)
            )
        self.precision.step("D", loss_da + loss_db, self.optimizers["D"])
        logs["loss/D"] = (loss_da + loss_db).detach()
        return logs

    def extra_state(self):
        return {"pools": {k: p.state_dict() for k, p in self.pools.items()}}

    def load_extra_state(self, state):
        for k, p in self.pools.items():
            if k in state.get("pools", {}):
                p.load_state_dict(state["pools"][k], self.device)

    def panels(self, reference, nets, generator, n):
        a, b = reference["a"][:n].to(self.device), reference["b"][:n].to(self.device)
        with torch.no_grad():
            fake_b, fake_a = nets["G_AB"](a), nets["G_BA"](b)
            rec_a, rec_b = nets["G_BA"](fake_b), nets["G_AB"](fake_a)
        show = lambda t: Panel("image", t.float().cpu(), 4)  # noqa: E731
        return {
            "real_A": show(a),
            "fake_B": show(fake_b),
            "rec_A": show(rec_a),
            "real_B": show(b),
            "fake_A": show(fake_a),
            "rec_B": show(rec_b),
        }


def cycle_loss(reconstruction: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """‖F(G(a)) − a‖₁, mean over pixels (the reference's L1Loss)."""
    return F.l1_loss(reconstruction.float(), original.float())
