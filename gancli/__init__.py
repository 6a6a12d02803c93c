"""gancli: train, sweep and sample GANs from composed Hydra configs, from the shell (`gan ...`) or Python:

    import gancli
    model = gancli.load("outputs/<date>/<run>")         # a run dir or a checkpoint
    images = model.sample(16, seed=0)                   # (16, C, H, W) in [0, 1]
    run = gancli.train(["model=wgan_gp", "trainer.steps=200"])

Importing the package is cheap on purpose (no torch): the `gan` dispatcher and `gan --help` must answer
instantly, so the functions below load on first use.
"""

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["GanError", "Model", "TrainResult", "evaluate", "export", "load", "train"]

if TYPE_CHECKING:
    from gancli.api import Model, TrainResult, evaluate, export, load, train
    from gancli.core.errors import GanError


def __getattr__(name: str):
    if name == "GanError":
        from gancli.core.errors import GanError

        return GanError
    if name in __all__:
        from gancli import api

        return getattr(api, name)
    raise AttributeError(f"module 'gancli' has no attribute {name!r}")
