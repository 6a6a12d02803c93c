"""Drawing: an algorithm's named panels, each by the renderer of its kind (image → grid, points → scatter)."""

from gancli.viz.panel import Panel
from gancli.viz.render import RENDERERS, render_panels, save_panels, to_uint8_images

__all__ = ["Panel", "RENDERERS", "render_panels", "save_panels", "to_uint8_images"]
