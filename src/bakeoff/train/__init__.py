"""Training: the step logic (module.py), the Fabric-based loop (loop.py), in-memory batches (data.py)."""

from bakeoff.train.data import ArrayBatches
from bakeoff.train.module import BakeoffModule

__all__ = ["ArrayBatches", "BakeoffModule"]
