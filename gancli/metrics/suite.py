"""Scoring a model (or a set of samples) with several metrics at once: every metric is checked before any
sample is drawn; samples, their features and the reference's are computed once and shared; the same
metrics on real test images give the floor beside each value."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from gancli.core.errors import GanError
from gancli.core.registry import did_you_mean
from gancli.data.base import Field
from gancli.metrics.base import METRICS, Metric, higher_is_better, labelled
from gancli.metrics.features import ClassifierFeatures, Extractor, Features, build_extractor
from gancli.metrics.reference import Cache, RealData, to_uint8

log = logging.getLogger("gancli")


def resolve(names) -> list[tuple[str, Metric]]:
    names = [str(n) for n in names]
    if not names:
        raise GanError("eval.metrics is empty; choose from: " + ", ".join(METRICS.names()) + ".")
    for n in names:
        if n not in METRICS:
            raise GanError(
                f"unknown metric '{n}'; choose from: {', '.join(METRICS.names())}." + did_you_mean(n, METRICS.names())
            )
    return [(n, METRICS.get(n)()) for n in names]


class EvalContext:
    """What the metrics share. `sampler(options, n)` draws n samples from the model (None when scoring a
    fixed set of samples); everything else is computed on first use and kept."""

    def __init__(
        self,
        metrics: list[tuple[str, Metric]],
        settings,
        field_: Field,
        real: RealData | None,
        device: torch.device,
        num_classes: int = 0,
        algorithm=None,
        sampler: Callable[[dict, int], torch.Tensor] | None = None,
        samples: torch.Tensor | None = None,
        shared: dict | None = None,
        nets=None,
    ):
        self.metrics, self.settings, self.field, self.real, self.device = metrics, settings, field_, real, device
        self.num_classes, self.algorithm, self.sampler = num_classes, algorithm, sampler
        self.nets = nets  # the networks the model is drawn with (the EMA copies in training)
        self._samples = samples
        self._shared = shared if shared is not None else {}  # extractor, reference: the same for the floor
        self.n = len(samples) if samples is not None else int(settings.n)
        self.is_floor = False  # scoring real test data in place of samples

    @property
    def kind(self) -> str:
        return self.field.kind

    def name_of(self, metric: Metric) -> str:
        return next(n for n, m in self.metrics if m is metric)

    def metrics_for_kind(self) -> list[str]:
        return [n for n, cls in METRICS.items() if self.kind in cls.kinds]

    # -- samples ----------------------------------------------------------------------------------
    def draw(self, options: dict, n: int) -> torch.Tensor:
        x = self.sampler(options, n)
        return to_uint8(x) if self.kind == "image" else x.float().cpu()

    @property
    def samples(self) -> torch.Tensor:
        if self._samples is None:
            self._samples = self.draw({}, self.n)
        return self._samples

    # -- features ---------------------------------------------------------------------------------
    def _cached(self, key: str, make):
        if key not in self._shared:
            self._shared[key] = make()
        return self._shared[key]

    @property
    def cache(self) -> Cache:
        return Cache(self.settings.cache_dir)

    @property
    def extractor(self) -> Extractor:
        s = self.settings
        return self._cached(
            "extractor",
            lambda: build_extractor(
                str(s.features), self.real, self.cache, self.device, s.inception_weights, int(s.classifier_epochs)
            ),
        )

    @property
    def extractor_has_logits(self) -> bool:
        return getattr(self.extractor, "has_logits", True)

    @property
    def classifier(self) -> ClassifierFeatures:
        if str(self.settings.features) == "classifier" or isinstance(self._shared.get("extractor"), ClassifierFeatures):
            return self.extractor  # class_acc alone need not load an Inception network
        return self._cached(
            "classifier",
            lambda: build_extractor(
                "classifier", self.real, self.cache, self.device, epochs=int(self.settings.classifier_epochs)
            ),
        )

    @property
    def features(self) -> Features:
        if "features" not in self.__dict__:
            self.__dict__["features"] = self.extractor(self.samples, int(self.settings.batch_size))
        return self.__dict__["features"]

    @property
    def reference_n(self) -> int:
        return len(self.real.train.samples)

    @property
    def reference(self) -> Features:
        def make():
            key = f"{self.extractor.key()}-{self.real.key()}"
            saved = self.cache.load("reference", key)
            if saved is not None:
                return Features(saved["features"], saved.get("logits"))
            log.info("extracting the reference features of %d real images (once; cached)", self.reference_n)
            feats = self.extractor(self.real.train.samples, int(self.settings.batch_size))
            self.cache.save(
                "reference",
                key,
                {"features": feats.features, **({"logits": feats.logits} if feats.logits is not None else {})},
            )
            return feats

        return self._cached("reference", make)

    def floor(self) -> EvalContext | None:
        """The same metrics, extractor and reference, on n real test images instead of samples (None when no
        metric has a floor)."""
        kept = [(n, m) for n, m in self.metrics if getattr(m, "has_floor", True)]
        if not kept:
            return None
        test = self.real.test.samples[: self.n]
        low = EvalContext(
            kept, self.settings, self.field, self.real, self.device, self.num_classes, samples=test, shared=self._shared
        )
        low.is_floor = True
        return low


@dataclass
class Report:
    """`values` and `floor` by bare value name, for code that knows its one extractor; everything written or
    printed goes through `named`, whose names carry the features (`fid@inception`)."""

    values: dict[str, float]
    floor: dict[str, float]
    protocol: dict[str, Any]
    seconds: float = 0.0
    notes: dict[str, str] = field(default_factory=dict)
    features: str | None = None  # the extractor's label, when some value is measured on features
    on_features: tuple[str, ...] = ()  # the values that are

    def named(self, values: dict[str, float] | None = None) -> dict[str, float]:
        """values (default: the results) under the names they are written with."""
        values = self.values if values is None else values
        return {labelled(k, self.features) if k in self.on_features else k: v for k, v in values.items()}

    def to_plain(self) -> dict:
        return {
            "values": self.named(),
            "floor": self.named(self.floor),
            "features": self.features,
            "protocol": self.protocol,
            "seconds": self.seconds,
        }

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(value, result, floor: real test images, better) per reported value."""
        fmt = lambda v: "" if v is None else f"{v:.4g}"  # noqa: E731
        return [
            (name, fmt(v), fmt(self.floor.get(k)), "higher" if higher_is_better(k) else "lower")
            for (k, v), name in zip(self.values.items(), self.named())
        ]


def evaluate(ctx: EvalContext, with_floor: bool = True) -> Report:
    """Check every metric, then compute them all (and their floor on real test images)."""
    t0 = time.perf_counter()
    for _, metric in ctx.metrics:
        metric.check(ctx)
    if any(m.needs_features for _, m in ctx.metrics):
        _ = ctx.extractor  # a missing download or an unlabelled dataset fails before sampling
    values: dict[str, float] = {}
    for _, metric in ctx.metrics:
        values.update(metric.compute(ctx))
    floor: dict[str, float] = {}
    if with_floor and ctx.real is not None:
        low = ctx.floor()
        if low is not None and len(low.samples) >= 2:
            try:
                for _, metric in low.metrics:
                    metric.check(low)
                    floor.update(metric.compute(low))
            except GanError as exc:  # too few real test images for a metric's subsets, say
                log.info("no floor for every metric: %s", exc)
    protocol = {
        "n": ctx.n,
        "metrics": {name: m.protocol for name, m in ctx.metrics},
    }
    on_features = tuple(v for _, m in ctx.metrics if m.needs_features for v in m.values)
    features = ctx.extractor.label if on_features else None
    if "extractor" in ctx._shared:
        protocol["features"] = f"{ctx.extractor.label} — {ctx.extractor.description}"
    if ctx.real is not None and any(m.needs_features or m.kinds != ("image",) for _, m in ctx.metrics):
        protocol["reference"] = (
            f"{ctx.real.cfg['name']}: {len(ctx.real.train.samples)} samples of {ctx.real.train.name}"
        )
        protocol["floor"] = f"{len(ctx.real.test.samples[: ctx.n])} real samples of {ctx.real.test.name}"
    return Report(values, floor, protocol, time.perf_counter() - t0, features=features, on_features=on_features)


AUTO = {"image": ["fid", "kid", "pr"], "points": ["modes"], "sequence": ["mmd"]}


def metric_names(setting, kind: str) -> list[str]:
    """eval.metrics: a list, one name, or auto (by the samples' kind)."""
    if setting is None or str(setting) == "auto":
        if kind not in AUTO:
            raise GanError(f"eval.metrics=auto has no default for {kind} samples; name the metrics.")
        return AUTO[kind]
    return [str(setting)] if isinstance(setting, str) else [str(m) for m in setting]


def model_context(
    algorithm,
    dataset_cfg,
    settings,
    device: torch.device,
    nets=None,
    shared: dict | None = None,
    real: RealData | None = None,
) -> EvalContext:
    """Metrics of a model: its samples (the panel named "samples", else its first) against dataset_cfg's data.
    Each context draws from a generator seeded by eval.seed, so every evaluation sees the same noise."""
    spec = algorithm.spec
    name = next((k for k in ("x", "b") if k in spec), None)  # what the model makes: samples, or translations
    if name is None:
        raise GanError(
            f"evaluation scores a sample field 'x' (or a translation's 'b'); this model's data has {spec.describe()}."
        )
    gen = torch.Generator().manual_seed(int(settings.seed))

    def sampler(options: dict, n: int) -> torch.Tensor:
        panels = algorithm.sample(options, n, 8, gen, int(settings.batch_size), grid=False, nets=nets)
        return (panels.get("samples") or panels.get("output") or next(iter(panels.values()))).data

    field_ = spec[name]
    return EvalContext(
        resolve(metric_names(settings.metrics, field_.kind)),
        settings,
        field_,
        real or RealData(dataset_cfg, int(settings.reference_n)),
        device,
        spec["y"].num_classes if "y" in spec else 0,
        algorithm,
        sampler,
        shared=shared,
        nets=nets,
    )
