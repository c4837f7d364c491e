"""Data: sources, splits, normalisation and augmentation."""

from typing import Any

from bakeoff.data.sources import ArrayData, from_arrays, load_source

__all__ = ["ArrayData", "Split", "from_arrays", "load_source", "make_splits"]


def __getattr__(name: str) -> Any:
    # splits import scikit-learn (~1 s): loaded when asked for, so that reading a study file stays light
    if name in ("Split", "make_splits"):
        from bakeoff.data import splits

        return getattr(splits, name)
    raise AttributeError(f"module 'bakeoff.data' has no attribute {name!r}")
