"""Losses and class weighting."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight

from bakeoff.config import LossConfig
from bakeoff.errors import BakeoffError


def class_weights(spec: str | list[float], y_train: np.ndarray, num_classes: int) -> np.ndarray | None:
    """``balanced``: n_samples / (n_classes * n_c), from the training split only (sklearn's definition)."""
    if isinstance(spec, list):
        if len(spec) != num_classes:
            raise BakeoffError(f"protocol.loss.class_weights: got {len(spec)} weights; expected {num_classes}")
        return np.asarray(spec, dtype=np.float64)
    if spec == "balanced":
        return compute_class_weight("balanced", classes=np.arange(num_classes), y=y_train)
    return None


class WeightedBCE(nn.Module):
    """Binary cross-entropy on one logit, each sample weighted by its class weight."""

    def __init__(self, weights: np.ndarray | None = None) -> None:
        super().__init__()
        w = torch.ones(2) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        self.register_buffer("weights", w)
        self.weighted = weights is not None

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.reshape(len(logits), -1)[:, 0]
        if not self.weighted:
            return F.binary_cross_entropy_with_logits(logits, target)
        w = self.weights[target.long()]
        return F.binary_cross_entropy_with_logits(logits, target, weight=w, reduction="sum") / w.sum()


def build_loss(cfg: LossConfig, default: str, y_train: np.ndarray, num_classes: int) -> nn.Module:
    name = cfg.name or default
    weights = class_weights(cfg.class_weights, y_train, num_classes)
    if name == "bce":
        if num_classes != 2:
            raise BakeoffError(f"protocol.loss.name: bce needs a binary task; got {num_classes} classes; use ce")
        return WeightedBCE(weights)
    if name == "ce":
        if num_classes == 2 and default == "bce":
            raise BakeoffError("protocol.loss.name: ce needs K outputs; binary_classification has one logit: use bce")
        w = None if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        return nn.CrossEntropyLoss(weight=w)
    raise BakeoffError(f"protocol.loss.name: unknown loss {name!r}; expected bce or ce")
