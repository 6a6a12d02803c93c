"""The GAN family: one G, one D, any adversarial loss, n_critic D steps then g_steps G steps per iteration,
gradient penalty or weight clipping, optional class conditioning, and the stabilising tricks. Covers gan, dcgan, lsgan,
wgan, wgan_gp, hinge, cgan and sngan; acgan and infogan subclass it and add one loss term each.

It trains on datasets with a sample field `x` (image or points) and, for conditional presets, a label
field `y`. Subclasses hook in through `d_heads` (extra D outputs), `latent` / `g_forward` (what G
consumes) and `d_aux` / `g_aux` (their extra loss terms); the step itself stays here. Sampling modes
live in `gan_sampling`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn as nn
from omegaconf import OmegaConf

from gancli.algorithms import gan_sampling
from gancli.algorithms.augment import DiffAugment, instance_noise
from gancli.algorithms.base import ALGORITHMS, Algorithm, Batch
from gancli.algorithms.export import Export, data_units
from gancli.algorithms.optim import build_optimizer
from gancli.algorithms.priors import build_prior, interpolation_grid
from gancli.core.eager import eager, frozen
from gancli.core.errors import GanError
from gancli.core.rules import COUNT, NONNEG, NONNEG_INT, number, one_of
from gancli.core.scalars import accumulate
from gancli.losses import build_loss, clip_weights, feature_matching, gradient_penalty, r1_penalty, zero_term
from gancli.nets import build_discriminator, build_generator
from gancli.viz.panel import Panel

HEAD_NORMS = ("none", "batch", "layer")  # the norm in the auxiliary heads' hidden layer
G_FAKES = ("reuse", "fresh")  # what G's step judges: the D step's fakes, or a new draw
LABELLED_DATASETS = "shapes, mnist, fashion_mnist, cifar10, or image_folder with one sub-folder per class"
SCATTER_REFERENCE = 2000  # real points drawn beneath the fakes in 2-D grids


def network_config(cfg):
    """The networks to build. A dataset may pin their shape (points cannot go through conv nets:
    `dataset.networks`); what the preset says about its networks' normalisation (spectral norm in
    SNGAN's D, none in a WGAN-GP critic, ...) still applies to the pinned ones."""
    pinned = cfg.dataset.get("networks")
    if not pinned:
        return cfg.model
    nets = OmegaConf.create(OmegaConf.to_container(pinned, resolve=True))
    for role in ("generator", "discriminator"):
        norm = OmegaConf.select(cfg.model, f"{role}.norm")
        if norm is not None and role in nets:
            nets[role]["norm"] = norm
    return nets


def _plain(node) -> dict:
    return OmegaConf.to_container(node, resolve=True) if node is not None else {}


def _model_choice(cfg, key: str, choices: tuple[str, ...]) -> str:
    """model.<key>, checked against its choices; older configs without the key get the first choice."""
    value = str(cfg.model.get(key, choices[0]))
    if value not in choices:
        raise GanError(f"model.{key}='{value}' is not one of: {', '.join(choices)}.")
    return value


def _with_aux(loss: torch.Tensor, logs: dict, aux, player: str) -> torch.Tensor:
    """loss plus a family's extra term (d_aux / g_aux result), its logs filed under the player."""
    if aux is None:
        return loss
    logs.update({f"{player}/{k}": v for k, v in aux[1].items()})
    return loss + aux[0]


class CriticSchedule:
    """D updates per G step: `model.n_critic`, except during bursts (`model.critic_burst`): the original
    WGAN code runs 100 critic updates for each of the first 25 G steps and at every 500th, so the critic
    is near its optimum whenever G is judged by it."""

    def __init__(self, n_critic: int, burst: dict | None):
        self.n = int(n_critic)
        burst = burst or {}
        self.burst_n, self.first, self.every = (int(burst.get(k, 0) or 0) for k in ("n_critic", "first", "every"))
        if self.n < 1 or (burst and (self.burst_n < 1 or self.first < 0 or self.every < 0)):
            raise GanError(
                f"model.n_critic={self.n} and model.critic_burst={burst}: each count must be ≥ 1 "
                "(burst: n_critic ≥ 1 D updates for the first `first` G steps and every `every`-th)."
            )

    def _bursts_before(self, step: int) -> int:
        if not self.burst_n:
            return 0
        bursts = min(step, self.first)
        if self.every and step > self.first:  # multiples of `every` in [first, step)
            bursts += -(-step // self.every) - -(-self.first // self.every)
        return bursts

    def at(self, step: int) -> int:
        """D updates before G step `step` (0-based)."""
        if self.burst_n and (step < self.first or (self.every and step % self.every == 0)):
            return self.burst_n
        return self.n

    def updates_before(self, step: int) -> int:
        """D updates in G steps 0 .. step − 1 (times lazy regularisation; derived, so nothing to save)."""
        bursts = self._bursts_before(step)
        return bursts * self.burst_n + (step - bursts) * self.n


@ALGORITHMS.register("gan")
class GAN(Algorithm):
    #: the family needs class labels even when neither network is conditioned on them (ACGAN)
    requires_labels = False
    ema_nets = ("G",)
    sample_nets = ("G",)
    sample_options = gan_sampling.OPTIONS
    step_functions = ("d_step", "g_step")
    data_fields = {"x": ("image", "points")}  # what G makes and D judges
    data_doc = "trains on a sample field 'x' (images or points)"
    config_rules = {
        "model.n_critic": COUNT,
        "model.g_steps": COUNT,
        "model.g_fakes": one_of(*G_FAKES),
        "model.head_hidden": NONNEG_INT,
        "model.condition.embed_dim": NONNEG_INT,
        "tricks.feature_matching": NONNEG,
        "tricks.label_smoothing": number(0, 1, hi_open=True),
        "tricks.instance_noise": NONNEG,
        "tricks.minibatch_std": NONNEG_INT,
        "tricks.pack": COUNT,
    }

    @classmethod
    def config_checks(cls, cfg: dict) -> list[str]:
        """Packs and minibatch-std groups tile the training batch (sampling batches may be ragged)."""
        tricks, batch = cfg.get("tricks", {}), cfg.get("trainer", {}).get("batch_size")
        pack, group = tricks.get("pack", 1) or 1, tricks.get("minibatch_std", 0) or 0
        if not all(isinstance(v, int) for v in (pack, group, batch)) or pack < 1 or group < 0:
            return []  # the value rules speak for these
        if batch % pack:
            return [f"tricks.pack={pack} must divide trainer.batch_size={batch}: D judges packs of {pack} samples."]
        if group and batch % (group * pack):
            return [
                f"tricks.minibatch_std={group} must divide the batch D sees (trainer.batch_size={batch}"
                f"{f' / tricks.pack={pack}' if pack > 1 else ''})."
            ]
        return []

    def __init__(self, cfg, spec, device, precision):
        super().__init__(cfg, spec, device, precision)
        self.field = spec["x"]
        nets = network_config(cfg)
        self.z_dim = int(nets.get("z_dim") or cfg.model.z_dim)
        self.prior = build_prior(str(cfg.model.get("noise", "normal")))  # older configs: N(0, I)
        cond = _plain(cfg.model.get("condition"))
        self.g_condition = cond.get("generator", "none")
        self.d_condition = cond.get("discriminator", "none")
        self.num_classes = self._check_labels(cfg, spec)
        tricks = _plain(cfg.get("tricks"))
        pack, group = int(tricks.get("pack", 1) or 1), int(tricks.get("minibatch_std", 0) or 0)  # rules: config_checks
        loss = _plain(cfg.loss)
        self.gp_weight = float(loss.pop("gp_weight", 0.0) or 0.0)
        self.clip = loss.pop("clip", None)
        self.r1_weight = float(loss.pop("r1_weight", 0.0) or 0.0)
        self.r1_every = int(loss.pop("r1_every", 1))
        self.lazy_r1 = self.r1_weight > 0 and self.r1_every > 1  # R1 in a step of its own (StyleGAN2's Dreg)
        self.G = self.build_generator(nets, cond).to(device)
        self.D = self.build_discriminator(nets, cond, group, pack).to(device)
        self.nets = {"G": self.G, "D": self.D}
        self.optimizers = {
            "G": build_optimizer(cfg.optimizer, self.G.parameters(), "g"),
            "D": build_optimizer(cfg.optimizer, self.D.parameters(), "d", self.r1_every if self.lazy_r1 else 1),
        }
        self.loss = build_loss(loss.pop("name"), **loss)
        self.critic = CriticSchedule(cfg.model.n_critic, _plain(cfg.model.get("critic_burst")))
        self.g_steps = int(cfg.model.get("g_steps", 1))  # older configs: one G update per iteration
        self.fresh_g_fakes = _model_choice(cfg, "g_fakes", G_FAKES) == "fresh"
        # tricks: read once here, never in the step
        if tricks.get("label_smoothing"):
            self.loss.smooth_real(float(tricks["label_smoothing"]))
        self.augment = DiffAugment(list(tricks.get("diffaugment") or []), self.field.kind)
        self.noise_sigma = float(tricks.get("instance_noise", 0.0))
        self.total_steps = max(1, int(cfg.trainer.steps)) if "trainer" in cfg else 1
        self.fm_weight = float(tricks.get("feature_matching", 0.0))
        self._real_view: torch.Tensor | None = None

    @property
    def n_critic(self) -> int:
        return self.critic.n

    # -- construction hooks -----------------------------------------------------------------------
    def _check_labels(self, cfg, spec) -> int:
        """The number of classes the networks condition on (0: none); fails clearly on unlabelled data."""
        from gancli.nets.conditional import G_CONDITIONS
        from gancli.nets.critic import D_CONDITIONS

        for role, value, choices in (
            ("generator", self.g_condition, G_CONDITIONS),
            ("discriminator", self.d_condition, D_CONDITIONS),
        ):
            if value not in choices:
                raise GanError(f"model.condition.{role}='{value}' is not one of: {', '.join(choices)}.")
        uses = self.requires_labels or self.g_condition != "none" or self.d_condition != "none"
        if not uses:
            return 0
        labels = spec.fields.get("y")
        if labels is None or not labels.num_classes:
            raise GanError(
                f"model '{cfg.model.name}' is class-conditional, but dataset '{cfg.dataset.name}' has no "
                f"class labels. Use a labelled dataset ({LABELLED_DATASETS}), or model.condition.*=none."
            )
        if self.g_condition == "none":
            raise GanError(
                f"model '{cfg.model.name}' uses class labels, so G must receive them too: set "
                "model.condition.generator=onehot or embedding."
            )
        if self.d_condition == "none" and not self.requires_labels:
            raise GanError(
                f"model '{cfg.model.name}' gives G the class but D never sees it, so nothing teaches G "
                "to draw it: set model.condition.discriminator=concat or projection (or use acgan)."
            )
        return labels.num_classes

    def build_generator(self, nets, cond: dict) -> nn.Module:
        return build_generator(
            nets.generator,
            self.field,
            self.z_dim,
            self.num_classes,
            self.g_condition,
            int(cond.get("embed_dim", 0) or 0),
        )

    def build_discriminator(self, nets, cond: dict, group: int, pack: int) -> nn.Module:
        """D(x, labels) → (logits, features): a registered body inside a Critic with its heads."""
        return build_discriminator(
            nets.discriminator,
            self.field,
            self.num_classes,
            self.d_condition,
            self.d_heads(),
            group,
            int(self.cfg.model.get("head_hidden", 0)),
            pack,
            _model_choice(self.cfg, "head_norm", HEAD_NORMS),
        )

    def d_heads(self) -> dict[str, int]:
        """Auxiliary D outputs {name: size} sharing D's features (ACGAN's classifier, InfoGAN's Q)."""
        return {}

    # -- what G consumes --------------------------------------------------------------------------
    def _draw(self, fn, *args, generator: torch.Generator | None = None):
        """Training noise comes from the device RNG; sampling noise from a seeded CPU generator."""
        if generator is None:
            return fn(*args, device=self.device)
        return fn(*args, generator=generator).to(self.device)

    def latent(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None) -> dict:
        inputs = {"z": self.prior.draw((n, self.z_dim), self.device, generator)}
        if self.num_classes:
            if labels is None:
                labels = self._draw(torch.randint, self.num_classes, (n,), generator=generator)
            inputs["labels"] = labels.to(self.device)
        return inputs

    def g_forward(self, G: nn.Module, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return G(inputs["z"], inputs["labels"]) if self.num_classes else G(inputs["z"])

    # -- the step ---------------------------------------------------------------------------------
    def instance_sigma(self, step: int) -> float:
        """Instance noise anneals linearly from tricks.instance_noise at step 0 to 0 at the last step."""
        return self.noise_sigma * max(0.0, 1.0 - step / self.total_steps) if self.noise_sigma else 0.0

    def d_view(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """What D is shown: augmented (same policy for real and fake) and, early on, noised."""
        if self.augment:
            x = self.augment(x)
        return instance_noise(x, sigma)

    def d_labels(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        """The labels D is conditioned on (None when D is unconditional)."""
        return inputs.get("labels") if self.d_condition != "none" else None

    def d_aux(self, h_real: torch.Tensor, h_fake: torch.Tensor, inputs: Mapping[str, torch.Tensor]):
        """A family's extra D term on D's features of a real and a fake batch: (loss, logs) or None."""
        return None

    def g_aux(self, h_fake: torch.Tensor, inputs: Mapping[str, torch.Tensor]):
        """A family's extra G term on D's features of the fake batch: (loss, logs) or None."""
        return None

    def r1_due(self, d_index: int) -> bool:
        """Whether D update `d_index` (counted from the start) carries R1."""
        return bool(self.r1_weight) and d_index % self.r1_every == 0

    def d_step(
        self, real: torch.Tensor, fake: torch.Tensor, inputs: dict, sigma: float, r1_due: bool = False
    ) -> dict[str, torch.Tensor]:
        """One D update; `r1_due`: this update carries R1 (`r1_due(d_index)`, decided by the caller so a
        compiled step sees a flag, not a counter that changes every step).

        The gradient penalty interpolates the views D is shown (augmented, noised), as R1 differentiates
        D at exactly what it was shown; StudioGAN interpolates the un-augmented images instead."""
        if self.clip is not None:  # WGAN: clamp before each critic update, as the paper's code does
            clip_weights(self.D, float(self.clip))
        fake = fake.detach()
        xr, xf = self.d_view(real, sigma), self.d_view(fake, sigma)
        r1 = r1_due and not self.lazy_r1  # every update: R1 joins this update's loss (StyleGAN2's Dboth)
        if r1:  # R1 differentiates D's real logits with respect to exactly what D was shown
            xr = xr.detach().requires_grad_(True)
        labels = self.d_labels(inputs)
        judge = self._judge_eagerly if r1 else self._judge
        loss, logs, d_real = judge(xr, xf, labels, inputs)
        if self.fm_weight:  # G's step compares against these, through D as it is after this update
            self._real_view = xr.detach()
        if self.gp_weight:
            gp = gradient_penalty(
                lambda x: self.D(x, labels)[0], xr, xf, self.precision.loss_scale("D"), self.precision.autocast
            )
            loss = loss + self.gp_weight * gp
            logs["gp"] = gp.detach()
        if r1:
            pen = r1_penalty(d_real, xr, self.precision.loss_scale("D"))
            loss = loss + (0.5 * self.r1_weight) * pen
            logs["r1"] = pen.detach()
        self.precision.step("D", loss, self.optimizers["D"])
        if r1_due and self.lazy_r1:
            logs["r1"] = self.lazy_r1_step(xr, labels)
        return logs

    def _judge(self, xr: torch.Tensor, xf: torch.Tensor, labels, inputs) -> tuple[torch.Tensor, dict, torch.Tensor]:
        """D's loss on a real and a fake view: (loss, logs, D's real logits)."""
        with self.precision.autocast():
            (d_real, h_real), (d_fake, h_fake) = self.D(xr, labels), self.D(xf, labels)
            loss = self.loss.d_loss(d_real.float(), d_fake.float())
            logs = {
                "loss/D": loss.detach(),
                "D(x)": d_real.detach().float().mean(),
                "D(G(z))": d_fake.detach().float().mean(),
            }
            loss = _with_aux(loss, logs, self.d_aux(h_real, h_fake, inputs), "D")
        return loss, logs, d_real

    #: the same, when R1 will differentiate it again
    _judge_eagerly = eager(_judge)

    @eager  # an update of its own, on a forward pass differentiated twice
    def lazy_r1_step(self, xr: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """StyleGAN2's lazy R1 (Dreg): every r1_every D updates, one more D update on the penalty alone,
        weighted by the interval, (γ/2)·k·E‖∇D(x)‖², on the real view the last update showed D. The D
        optimizer's lr and betas are rescaled for the extra steps (`optim.lazy_ratio`). Every parameter of
        D's forward gets a gradient, zero where R1 does not reach it (its output bias), so Adam steps it as
        the reference's does (`zero_term`). Logged ×k, amortised over the interval."""
        xr = xr.detach().requires_grad_(True)
        with self.precision.autocast():
            d_real, _ = self.D(xr, labels)
        pen = r1_penalty(d_real, xr, self.precision.loss_scale("D"))
        self.precision.step("D", (0.5 * self.r1_weight * self.r1_every) * pen + zero_term(d_real), self.optimizers["D"])
        return pen.detach() * self.r1_every

    def g_step(self, fake: torch.Tensor, inputs: dict, sigma: float) -> dict[str, torch.Tensor]:
        """One G update through D, which the caller has frozen (no D weight grads: half the backward)."""
        labels = self.d_labels(inputs)
        with self.precision.autocast():
            d_fake, h_fake = self.D(self.d_view(fake, sigma), labels)
            loss = self.loss.g_loss(d_fake.float())
            logs = {"loss/G": loss.detach()}
            if self.fm_weight:
                with torch.no_grad():
                    _, h_real = self.D(self._real_view, labels)
                fm = feature_matching(h_real, h_fake)
                loss = loss + self.fm_weight * fm
                logs["feature_matching"] = fm.detach()
            loss = _with_aux(loss, logs, self.g_aux(h_fake, inputs), "G")
        self.precision.step("G", loss, self.optimizers["G"])
        return logs

    def train_step(self, next_batch: Callable[[], Batch], step: int) -> dict[str, torch.Tensor]:
        """One iteration: n_critic D steps on fresh batches and noise, then `model.g_steps` G steps. By default
        the last D step's fakes (generated with grad) serve the first G step, as in the reference DCGAN loop:
        one G forward saved per iteration; `model.g_fakes=fresh` draws new noise and codes for it instead
        (the original InfoGAN code). Every further G step draws new noise (G has changed; RCGAN's code runs
        two G rounds per D round on MNIST), with the classes of the last real batch. Fakes take their
        classes from the real batch, so both halves of D's batch share one class mix.
        D's logs are means over its updates, so a term only some updates compute (lazy R1) is logged
        wherever it ran, not only when it fell on the last one; G's logs are means over its updates."""
        sigma = self.instance_sigma(step)
        n_critic, first = self.critic.at(step), self.critic.updates_before(step)
        d_sums: dict[str, torch.Tensor] = {}
        for i in range(n_critic):
            batch = next_batch()
            real = batch["x"]
            labels = batch.get("y") if self.num_classes else None
            inputs = self.latent(real.shape[0], labels)
            keep = i == n_critic - 1 and not self.fresh_g_fakes
            with torch.set_grad_enabled(keep), self.precision.autocast():
                fake = self.g_forward(self.G, inputs)
            accumulate(d_sums, self.d_step(real, fake, inputs, sigma, self.r1_due(first + i)))
        logs = {k: v / n_critic for k, v in d_sums.items()}
        g_sums: dict[str, torch.Tensor] = {}
        for j in range(self.g_steps):
            if j or self.fresh_g_fakes:
                inputs = self.latent(real.shape[0], labels)
                with self.precision.autocast():
                    fake = self.g_forward(self.G, inputs)
            with frozen(self.D):
                g_logs = self.g_step(fake, inputs, sigma)
            if self.g_steps > 1:
                accumulate(g_sums, g_logs)
        logs.update(g_logs if self.g_steps == 1 else {k: v / self.g_steps for k, v in g_sums.items()})
        return logs

    def ema_forward(self, nets, next_batch, n, generator) -> None:
        self.generate(self.latent(n, None, generator), nets)

    # -- pictures and sampling --------------------------------------------------------------------
    def reference_size(self, n: int) -> int:
        """Scatter plots draw real points beneath the fakes; image grids need no real data."""
        return SCATTER_REFERENCE if self.field.kind == "points" else 0

    def panels(self, reference, nets, generator, n) -> dict[str, Panel]:
        inputs, nrow = self.grid_inputs(n, generator)
        return {"samples": self.panel(self.generate(inputs, nets), nrow, overlay=reference.get("x"))}

    def panel(self, x: torch.Tensor, nrow: int, meta: dict | None = None, overlay=None) -> Panel:
        return Panel(self.field.kind, x, nrow, meta or {}, overlay, self.field.extras)

    def sample(self, options, n, nrow, generator, batch_size, grid=True, nets=None) -> dict[str, Panel]:
        return gan_sampling.sample(self, options, n, nrow, generator, batch_size, grid, nets)

    def sample_inputs(self, n: int, generator: torch.Generator, labels: torch.Tensor | None = None) -> dict:
        """G's inputs for n samples, drawn from `generator` (CPU), placed on the device. labels: the class (or
        categorical code) of each sample, for models where `sample_classes()` > 0. Every entry but "z" is a
        per-sample condition that bulk sampling stores beside the samples."""
        return self.latent(n, labels, generator)

    def sample_classes(self) -> int:
        """How many values `class=` can pick from (0: the model has no classes)."""
        return self.num_classes

    def class_names(self) -> tuple[str, ...]:
        """Names `class=` accepts besides indices: the dataset's, for models trained on its labels."""
        return tuple(self.spec["y"].class_names) if self.num_classes else ()

    def grid_inputs(self, n: int, generator: torch.Generator) -> tuple[dict[str, torch.Tensor], int]:
        """Inputs for a grid of about n samples and its row length: one row per class when there are
        few enough classes, so every training grid shows each class side by side."""
        k = self.sample_classes()
        if not k or k > 32:
            return self.sample_inputs(n, generator), 8
        per_class = max(1, round(n / k))
        return self.sample_inputs(k * per_class, generator, torch.arange(k).repeat_interleave(per_class)), per_class

    def interpolation_inputs(self, rows: int, cols: int, generator: torch.Generator) -> dict:
        z = interpolation_grid(self.prior, self.z_dim, rows, cols, generator).to(self.device)
        inputs = self.latent(rows * cols, None, generator)  # conditions: one per row, held along it
        inputs["z"] = z
        for k, v in inputs.items():
            if k != "z":
                inputs[k] = v.view(rows, cols, *v.shape[1:])[:, :1].expand(-1, cols, *v.shape[1:]).reshape(v.shape)
        return inputs

    @torch.no_grad()
    def generate(self, inputs: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        G = (nets or self.nets)["G"]
        with self.precision.autocast():
            return self.g_forward(G, inputs).float()

    # -- export -----------------------------------------------------------------------------------
    def export(self, options=None) -> Export:
        """G from the inputs `sample_inputs` draws (z, and the labels or codes where the model has them) to
        samples in the data's units: what `gan sample` computes, without its batching."""
        return Export.of(
            {"G": self.nets["G"]},
            lambda nets, inputs: data_units(self.g_forward(nets["G"], inputs), self.field),
            self.input_about(),
            draw=lambda n, gen: self.sample_inputs(n, gen),
            output=self.field,
            classes=self.sample_classes(),
            class_names=self.class_names(),
        )

    def input_about(self) -> dict[str, str]:
        """Each of G's inputs in words, in the order an exported G takes them."""
        about = {"z": f"noise, {self.prior.about}"}
        if self.num_classes:
            about["labels"] = f"class index, 0 to {self.num_classes - 1}"
        return about
