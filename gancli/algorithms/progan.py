"""Progressive growing of GANs (Karras et al. 2018): G and D start at 4×4 and gain a resolution at a time;
each new level fades in (α from 0 to 1 over `model.fade_images` real images), then stabilises for
`model.stable_images`. The reals are average-pooled to the current resolution and, during a fade, blended
with their half-resolution, nearest-upsampled version by the same α, as the reference code does.

Loss: WGAN-GP (λ = 10) plus the drift term ε·E[D(x)²] (ε = 0.001); one D step per G step; Adam
lr 1e-3, β = (0, 0.99), ε = 1e-8, its state reset at every stage (the reference's
`reset_opt_for_new_lod`). A phase is a stage; α follows from the step, so a run resumed mid-fade continues
the same α.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from gancli.algorithms.base import ALGORITHMS, Algorithm, SampleOption, generate_in_batches
from gancli.algorithms.export import Export, data_units
from gancli.algorithms.optim import build_optimizer
from gancli.algorithms.priors import build_prior
from gancli.core.errors import GanError
from gancli.core.rules import COUNT, NONNEG, NONNEG_INT
from gancli.losses import gradient_penalty
from gancli.nets.progressive import ProDiscriminator, ProGenerator, level_count
from gancli.viz.panel import Panel


class GrowthSchedule:
    """Stages from images per stage and each level's batch: stage 0 stabilises level 0 (4 px); then each
    level k has a fade stage (2k − 1, `fade` images) and a stable stage (2k, `stable` images); the last
    stage runs to the end. A stage is a phase of training: Adam starts afresh at each, as the reference
    resets it whenever its level of detail crosses an integer."""

    def __init__(self, levels: int, fade: int, stable: int, batches: list[int]):
        if fade < 1 or stable < 0:
            raise GanError(
                f"model.fade_images={fade} and model.stable_images={stable}: a fade needs ≥ 1 image and "
                "stabilising ≥ 0."
            )
        self.levels, self.fade, self.batches = levels, fade, batches
        lengths = [math.ceil(stable / batches[0])]
        for b in batches[1:]:
            lengths += [math.ceil(fade / b), math.ceil(stable / b)]
        self.starts = [sum(lengths[:k]) for k in range(len(lengths))]

    @property
    def stages(self) -> int:
        return len(self.starts)

    @staticmethod
    def level_of(stage: int) -> int:
        return (stage + 1) // 2

    def stage_at(self, step: int) -> int:
        return max(k for k in range(self.stages) if self.starts[k] <= step)

    def level_at(self, step: int) -> int:
        return self.level_of(self.stage_at(step))

    def alpha_at(self, step: int) -> float:
        """α of the fade at `step` (1 outside fades), counted in images as the paper does."""
        stage = self.stage_at(step)
        if stage % 2 == 0:
            return 1.0
        return min(1.0, (step - self.starts[stage]) * self.batches[self.level_of(stage)] / self.fade)


def resize_reals(x: torch.Tensor, resolution: int, alpha: float) -> torch.Tensor:
    """Reals at `resolution` (average pooling), blended during a fade with their half-resolution version."""
    if x.shape[-1] != resolution:
        x = F.adaptive_avg_pool2d(x, resolution)
    if alpha < 1:
        low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
        x = torch.lerp(low, x, alpha)
    return x


def at_side(x: torch.Tensor, side: int) -> torch.Tensor:
    """Images of a coarser level nearest-upsampled to the dataset's side, as grids and `gan sample` show them."""
    return F.interpolate(x, size=side, mode="nearest") if x.shape[-1] != side else x


@ALGORITHMS.register("progan")
class ProGAN(Algorithm):
    data_fields = {"x": ("image",)}
    data_doc = "grows an image generator (a field 'x' of images)"
    config_rules = {
        "model.fade_images": COUNT,
        "model.stable_images": NONNEG_INT,
        "model.mbstd_group": COUNT,
        "model.drift": NONNEG,
        "model.gp_weight": NONNEG,
        "model.width": COUNT,
        "model.max_width": COUNT,
    }
    ema_nets = ("G",)
    sample_nets = ("G",)
    sample_options = {
        "level": SampleOption(
            int, "progan: the level of detail to draw at (0: 4×4; default: the checkpoint's), with α = 1"
        )
    }
    export_options = {
        "level": SampleOption(
            int, "progan, stylegan: the level of detail to export (0: 4×4; default: the checkpoint's), with α = 1"
        )
    }

    def __init__(self, cfg, spec, device, precision):
        super().__init__(cfg, spec, device, precision)
        m = cfg.model
        x = spec["x"]
        self.field, self.z_dim = x, int(m.z_dim)
        channels, resolution = x.shape[0], x.shape[-1]
        self.levels = level_count(resolution)
        self.prior = build_prior(str(m.get("noise", "normal")))
        self.G = self.build_generator(m, channels, resolution).to(device)
        self.D = ProDiscriminator(channels, resolution, int(m.width), int(m.max_width), int(m.mbstd_group)).to(device)
        self.nets = {"G": self.G, "D": self.D}
        batch = int(cfg.trainer.batch_size) if "trainer" in cfg else 1
        sizes = list(m.batch_sizes) if m.get("batch_sizes") else [batch] * self.levels
        if len(sizes) != self.levels:
            raise GanError(
                f"model.batch_sizes has {len(sizes)} entries; at {resolution} px there are {self.levels} "
                f"levels (4, 8, ... {resolution} px): give one batch size per level, or null."
            )
        self.batches = [int(b) for b in sizes]
        self.schedule = GrowthSchedule(self.levels, int(m.fade_images), int(m.stable_images), self.batches)
        self.gp_weight, self.drift = float(m.get("gp_weight", 0.0)), float(m.get("drift", 0.0))
        self.alpha = 1.0
        self._build_optimizers()

    def build_generator(self, m, channels: int, resolution: int):
        return ProGenerator(self.z_dim, channels, resolution, int(m.width), int(m.max_width))

    def _build_optimizers(self) -> None:
        self.optimizers = {
            "G": build_optimizer(self.cfg.optimizer, self.G.parameters(), "g"),
            "D": build_optimizer(self.cfg.optimizer, self.D.parameters(), "d"),
        }

    # -- phases: one per stage (a level's fade, its stabilisation) ---------------------------------
    def phase_at(self, step):
        return self.schedule.stage_at(step)

    def enter_phase(self, phase):
        if not 0 <= phase < self.schedule.stages:
            raise GanError(
                f"this growth schedule has stages 0 to {self.schedule.stages - 1}; a checkpoint asked for "
                f"stage {phase}."
            )
        self._build_optimizers()  # fresh Adam state at every stage

    @property
    def level(self) -> int:
        return self.schedule.level_of(self.phase)

    def batch_size(self, phase):
        return self.batches[self.schedule.level_of(phase)]

    def resolution(self, level: int | None = None) -> int:
        return 4 * 2 ** (self.level if level is None else level)

    def compile_blocker(self) -> str | None:
        return (
            f"model={self.cfg.model.name}: its networks take the level and the fade α as arguments, which change "
            "every step and would recompile them each time"
        )

    def status(self):
        fade = f", fade-in α {self.alpha:.2f}" if self.alpha < 1 else ""
        return f"{self.resolution()}px{fade}"

    # -- one iteration ----------------------------------------------------------------------------
    def train_step(self, next_batch, step):
        level, alpha = self.level, self.schedule.alpha_at(step)
        self.alpha = alpha
        self.G.progress.copy_(torch.tensor([float(level), alpha]))
        real = resize_reals(next_batch()["x"], self.resolution(level), alpha)
        n = len(real)
        with self.precision.autocast():
            with torch.no_grad():
                fake = self.generate(n, level, alpha, track=True)
        loss_d, logs = self.d_loss(real, fake, level, alpha)
        self.precision.step("D", loss_d, self.optimizers["D"])
        self.D.requires_grad_(False)
        with self.precision.autocast():
            loss_g = self.g_loss(self.D(self.generate(n, level, alpha), level, alpha))
        self.precision.step("G", loss_g, self.optimizers["G"])
        self.D.requires_grad_(True)
        return {**logs, "loss/G": loss_g.detach()}

    # -- the objective (StyleGAN changes these three) ---------------------------------------------------
    def generate(self, n: int, level: int, alpha: float, track: bool = False) -> torch.Tensor:
        return self.G(self.prior.draw((n, self.z_dim), self.device), level, alpha)

    def d_loss(self, real, fake, level, alpha) -> tuple[torch.Tensor, dict]:
        """WGAN-GP plus the drift term; returns (the loss D steps on, what to log)."""
        D = self.D
        with self.precision.autocast():
            d_real, d_fake = D(real, level, alpha), D(fake, level, alpha)
            wasserstein = d_fake.float().mean() - d_real.float().mean()
            drift = d_real.float().pow(2).mean()
        gp = gradient_penalty(
            lambda x: D(x, level, alpha), real, fake, self.precision.loss_scale("D"), self.precision.autocast
        )
        loss = wasserstein + self.gp_weight * gp + self.drift * drift
        return loss, {"loss/D": wasserstein.detach(), "gp": gp.detach(), "drift": drift.detach()}

    def g_loss(self, d_fake: torch.Tensor) -> torch.Tensor:
        return -d_fake.float().mean()

    # -- pictures and sampling --------------------------------------------------------------------
    def _draw(self, G, z: torch.Tensor, level: int, alpha: float) -> torch.Tensor:
        """Images at the level's resolution, nearest-upsampled to the dataset's, so every grid has one size."""
        return at_side(G(z.to(self.device), level, alpha).float(), self.field.shape[-1])

    def panels(self, reference, nets, generator, n):
        z = self.prior.draw((n, self.z_dim), generator=generator)
        with torch.no_grad():
            x = self._draw(nets["G"], z, self.level, self.alpha)
        return {"samples": Panel("image", x.cpu(), 8)}

    def sample(self, options, n, nrow, generator, batch_size, grid=True, nets=None):
        G = (nets or self.nets)["G"]
        level, alpha = G.trained_at()
        if options.get("level") is not None:
            wanted = int(options["level"])
            if not 0 <= wanted <= level:
                raise GanError(
                    f"level={wanted}: this checkpoint has trained levels 0 to {level} "
                    f"({self.resolution(0)} to {self.resolution(level)} px)."
                )
            level, alpha = wanted, 1.0
        z = self.prior.draw((n, self.z_dim), generator=generator)
        with torch.no_grad():
            x = generate_in_batches(lambda b: self._draw(G, b["z"], level, alpha), {"z": z}, batch_size)
        return {"samples": Panel("image", x, nrow, {"z": z})}

    # -- export -----------------------------------------------------------------------------------
    def export_level(self, wanted: int | None) -> int:
        """The level an export draws at, with α = 1: the checkpoint's, or `wanted` among the finished ones.
        A checkpoint written mid-fade is refused: its G blends two levels by an α training was still
        moving, which is no finished model."""
        level, alpha = self.nets["G"].trained_at()
        finished = level if alpha >= 1 else level - 1
        if wanted is None and alpha < 1:
            raise GanError(
                f"model '{self.cfg.model.name}' cannot be exported from this checkpoint: it was written mid-fade "
                f"(level {level}, {self.resolution(level)} px, fading in at α = {alpha:.2f}), where the generator "
                f"blends two levels by an α that training was still moving. Export a checkpoint written after "
                f"the fade, or level={finished} (its finished {self.resolution(finished)} px level, α = 1)."
            )
        if wanted is None:
            return level
        if not 0 <= int(wanted) <= finished:
            raise GanError(
                f"level={wanted}: this checkpoint has finished levels 0 to {finished} "
                f"({self.resolution(0)} to {self.resolution(finished)} px)."
            )
        return int(wanted)

    def level_details(self, level: int) -> dict:
        return {"level": level, "level_resolution": self.resolution(level), "upsampled_to": self.field.shape[-1]}

    def export(self, options=None):
        """G at a finished level (α = 1) from z, nearest-upsampled to the dataset's side as `gan sample` draws."""
        options = options or {}
        level, side = self.export_level(options.get("level")), self.field.shape[-1]
        return Export.of(
            {"G": self.nets["G"]},
            lambda nets, x: data_units(at_side(nets["G"](x["z"], level, 1.0), side), self.field),
            {"z": f"noise, {self.prior.about}"},
            draw=lambda n, gen: {"z": self.prior.draw((n, self.z_dim), generator=gen)},
            output=self.field,
            details=self.level_details(level),
        )
