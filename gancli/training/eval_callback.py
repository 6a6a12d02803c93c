"""Evaluation during training (`eval.every`, `eval.metrics`, `eval.n`, `eval.best`): a callback that scores
the model every `every` steps with gancli.metrics, using its EMA networks when there are some, and keeps
`checkpoints/best.pt` for the chosen value. The best so far travels in the checkpoint, so a resumed run
replaces best.pt only when it beats the run's best, not the resumed part's."""

from __future__ import annotations

import logging

from omegaconf import OmegaConf

from gancli.core.errors import GanError
from gancli.metrics import HIGHER_IS_BETTER, better
from gancli.metrics.suite import model_context
from gancli.training.callbacks import Callback

log = logging.getLogger("gancli")


class Evaluate(Callback):
    def __init__(self, settings: dict, dataset_cfg: dict, algorithm):
        settings = OmegaConf.create(settings)  # the metrics read attributes, as `gan eval`'s config gives them
        super().__init__(int(settings.every))
        self.settings, self.dataset_cfg, self.best_key = settings, dataset_cfg, settings.best
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
        values = report.values
        log.info("step %d: %s", trainer.step, "  ".join(f"{k} {v:.4g}" for k, v in values.items()))
        if self.best_key is not None and better(self.best_key, values[self.best_key], self.best):
            self.best, self.best_step = values[self.best_key], trainer.step
            trainer.save_checkpoint("best.pt")
            log.info(
                "best %s so far (%s is better): checkpoints/best.pt",
                self.best_key,
                "higher" if HIGHER_IS_BETTER[self.best_key] else "lower",
            )
        return values

    def on_fit_end(self, trainer, summary):
        if self.best_key is not None:
            summary["best"] = {"key": self.best_key, "value": self.best, "step": self.best_step}

    def state_dict(self):
        return {"best": self.best, "best_step": self.best_step}

    def load_state_dict(self, state):
        self.best, self.best_step = state.get("best"), state.get("best_step")
