"""The data layer: every dataset becomes a DataSource that yields dict batches ({"x": ..., "y": ...}).

Datasets register a builder by name (`dataset.name` in the config); importing this package imports them.
"""

from gancli.data.base import DATASETS, DataSource, DataSpec, build_dataset
from gancli.data import shapes, toy2d, vision  # noqa: F401  (registration)

__all__ = ["DATASETS", "DataSource", "DataSpec", "build_dataset"]
