"""Evaluation during training (`eval.every`, `eval.metrics`, `eval.n`, `eval.best`): a callback that scores
the model every `every` steps with gancli.metrics, using its EMA networks when there are some, and keeps
`checkpoints/best.pt` for the chosen value, from the first evaluation after `eval.best_after` steps. The
best so far travels in the checkpoint, so a resumed run replaces best.pt only when it beats the run's best,
not the resumed part's. Values go out under names that carry their features (`fid@inception`); a best
measured on other features (or saved before the names did) is not compared with: best.pt starts again from
the next evaluation."""

from __future__ import annotations

import logging

from omegaconf import OmegaConf

from gancli.core.errors import GanError
from gancli.metrics import better, higher_is_better, value_of
from gancli.metrics.suite import model_context
from gancli.training.callbacks import Callback

log = logging.getLogger("gancli")


class Evaluate(Callback):
    def __init__(self, settings: dict, dataset_cfg: dict, algorithm):
        settings = OmegaConf.create(settings)  # the metrics read attributes, as `gan eval`'s config gives them
        super().__init__(int(settings.every))
        self.settings, self.dataset_cfg, self.best_key = settings, dataset_cfg, settings.best
        self.best_after = int(settings.get("best_after", 0))
        self.shared: dict = {}  # the extractor and the reference features, computed once
        ctx = model_context(algorithm, dataset_cfg, settings, algorithm.device)
        for _, metric in ctx.metrics:  # a metric that cannot be computed here fails before training
            metric.check(ctx)
        self.real = ctx.real
        produced = [v for _, m in ctx.metrics for v in m.values]
        if self.best_key is not None and self.best_key not in produced:
            raise GanError(
                f"eval.best={self.best_key} is not a value of eval.metrics ({', '.join(produced)}); "
                f"choose one of them, or add the metric that reports it."
            )
        self.best: float | None = None
        self.best_step: int | None = None
        self.best_name: str | None = None  # the written name of the best value: fid@inception

    def on_interval(self, trainer):
        algorithm = trainer.algorithm
        trainer.prepare_sampling()
        algorithm.train_mode(False)
        try:
            from gancli.metrics import evaluate

            ctx = model_context(
                algorithm,
                self.dataset_cfg,
                self.settings,
                algorithm.device,
                nets=trainer.sampling_nets(),
                shared=self.shared,
                real=self.real,
            )
            report = evaluate(ctx, with_floor=False)
        finally:
            algorithm.train_mode(True)
        values = report.named()
        log.info("step %d: %s", trainer.step, "  ".join(f"{k} {v:.4g}" for k, v in values.items()))
        if self.best_key is not None and trainer.step > self.best_after:
            name = next(k for k in values if value_of(k) == self.best_key)
            if self.best is not None and name != self.best_name:
                log.info(
                    "the best %s so far was measured as %s, not %s: best.pt starts again from this evaluation",
                    self.best_key,
                    self.best_name or "an unnamed value",
                    name,
                )
                self.best = self.best_step = None
            if better(name, values[name], self.best):
                self.best, self.best_step, self.best_name = values[name], trainer.step, name
                trainer.save_checkpoint("best.pt")
                log.info(
                    "best %s so far (%s is better): checkpoints/best.pt",
                    name,
                    "higher" if higher_is_better(name) else "lower",
                )
        return values

    def on_fit_end(self, trainer, summary):
        if self.best_key is not None:
            summary["best"] = {"key": self.best_name or self.best_key, "value": self.best, "step": self.best_step}

    def state_dict(self):
        return {"best": self.best, "best_step": self.best_step, "best_name": self.best_name}

    def load_state_dict(self, state):
        self.best, self.best_step, self.best_name = state.get("best"), state.get("best_step"), state.get("best_name")
