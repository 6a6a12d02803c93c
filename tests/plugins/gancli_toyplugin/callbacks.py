"""A callback from outside gancli: every `every` steps, the spread of the latent codes toy_aae keeps."""

from gancli.training.callbacks import Callback


class CodeSpread(Callback):
    def on_interval(self, trainer):
        return {"code_std": float(trainer.algorithm.extra_state()["code_std"])}
