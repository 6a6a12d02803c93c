"""The data layer: every dataset becomes a DataSource whose DataSpec names its fields (e.g. `x` image and
`y` label; `a`, `b` for paired images) and whose streams yield dict batches of them.

Datasets register a builder by name (`dataset.name` in the config); importing this package imports them.
"""

from gancli.data import sequences, shapes, toy2d, translation, vision  # noqa: F401  (registration)
from gancli.data.base import DATASETS, DataSource, DataSpec, Field, build_dataset

__all__ = ["DATASETS", "DataSource", "DataSpec", "Field", "build_dataset"]
