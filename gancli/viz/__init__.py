"""Drawing samples: how a sample is drawn depends on its kind (image → grid, points → scatter)."""

from gancli.viz.render import RENDERERS, save_samples

__all__ = ["RENDERERS", "save_samples"]
