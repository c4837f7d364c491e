"""Data: sources, splits, normalisation and augmentation."""

from bakeoff.data.sources import ArrayData, from_arrays, load_source
from bakeoff.data.splits import Split, make_splits

__all__ = ["ArrayData", "Split", "from_arrays", "load_source", "make_splits"]
