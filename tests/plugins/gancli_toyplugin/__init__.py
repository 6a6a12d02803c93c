"""A test-only gancli plugin, as a researcher's own package would be: importing it registers two families,
a network arch and a dataset; its conf/ folder holds their presets. It is found through the entry points
in gancli_toyplugin-0.1.dist-info (a real package declares them in its pyproject.toml)."""

from gancli_toyplugin import aae, grow, nets, pairs  # noqa: F401  (registration)
