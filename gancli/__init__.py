"""gancli: train, sweep and sample GANs from composed Hydra configs.

Importing the package is cheap on purpose (no torch): the `gan` dispatcher and
`gan --help` must answer instantly.
"""

__version__ = "0.1.0"
