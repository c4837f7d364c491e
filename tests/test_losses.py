from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bakeoff.config import LossConfig
from bakeoff.errors import BakeoffError
from bakeoff.losses import WeightedBCE, build_loss, class_weights


def test_balanced_weights_come_from_training_labels():
    y = np.array([0] * 80 + [1] * 20)
    w = class_weights("balanced", y, 2)
    np.testing.assert_allclose(w, [100 / (2 * 80), 100 / (2 * 20)])
    assert class_weights("none", y, 2) is None
    with pytest.raises(BakeoffError, match="expected 2"):
        class_weights([1.0, 2.0, 3.0], y, 2)


def test_weighted_bce_is_the_weighted_mean():
    torch.manual_seed(0)
    logits, target = torch.randn(50, 1), (torch.rand(50) < 0.3).float()
    w = np.array([0.6, 2.5])
    got = WeightedBCE(w)(logits, target)
    per = F.binary_cross_entropy_with_logits(logits[:, 0], target, reduction="none")
    sw = torch.as_tensor(w, dtype=torch.float32)[target.long()]
    assert got.item() == pytest.approx(((per * sw).sum() / sw.sum()).item(), rel=1e-6)
    assert WeightedBCE(None)(logits, target).item() == pytest.approx(per.mean().item(), rel=1e-6)


def test_build_loss_checks_task_fit():
    y = np.array([0, 1, 2, 1])
    ce = build_loss(LossConfig(name="ce", class_weights="balanced"), "ce", y, 3)
    assert torch.allclose(ce.weight, torch.tensor(class_weights("balanced", y, 3), dtype=torch.float32))
    with pytest.raises(BakeoffError, match="bce needs a binary task"):
        build_loss(LossConfig(name="bce"), "ce", y, 3)
