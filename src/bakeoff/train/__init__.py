"""Training: one LightningModule for every contender, a trainer factory and fast in-memory loaders."""

from bakeoff.train.data import make_loader
from bakeoff.train.module import BakeoffModule
from bakeoff.train.trainer import build_trainer

__all__ = ["BakeoffModule", "build_trainer", "make_loader"]
