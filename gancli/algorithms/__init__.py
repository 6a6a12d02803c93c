"""Training algorithms: each owns its networks, optimizers and one iteration (`train_step`).

`model.algorithm` names one. A new family is a new module here that registers itself, plus configs.
"""

from gancli.algorithms import (  # noqa: F401  (registration)
    aae,
    aae_categorical,
    acgan,
    bigan,
    gan,
    infogan,
    progan,
    rgan,
    stylegan,
    stylegan2,
    translation,
)
from gancli.algorithms.base import ALGORITHMS, Algorithm, build_algorithm

__all__ = ["ALGORITHMS", "Algorithm", "build_algorithm"]
