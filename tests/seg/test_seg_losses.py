"""Every segmentation loss against MONAI (where it has it) or hand-computed values; class weightings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai import losses as ml
from sklearn.utils.class_weight import compute_class_weight

from bakeoff.config import LossConfig
from bakeoff.errors import BakeoffError
from bakeoff.losses import build_loss, class_weights
from bakeoff.tasks import get_task

K = 4
COUNTS = np.array([900, 60, 30, 10])


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, K, 6, 5, generator=g)
    target = torch.randint(0, K, (2, 6, 5), generator=g)
    return logits, target


def _loss(**cfg):
    return build_loss(LossConfig(**cfg), get_task("semantic_segmentation", K), None, counts=COUNTS)


def test_weighted_ce_matches_torch(batch):
    logits, target = batch
    w = class_weights("inverse_frequency", None, K, COUNTS)
    expected = F.cross_entropy(logits, target, weight=torch.tensor(w, dtype=torch.float32))
    assert torch.allclose(_loss(name="ce", class_weights="inverse_frequency")(logits, target), expected)


@pytest.mark.parametrize("name, reference", [
    ("dice", lambda: ml.DiceLoss(include_background=True, to_onehot_y=True, softmax=True)),
    ("dice_ce", lambda: ml.DiceCELoss(include_background=True, to_onehot_y=True, softmax=True)),
    ("focal_dice", lambda: ml.DiceFocalLoss(include_background=True, to_onehot_y=True, softmax=True, gamma=2.0)),
    ("tversky", lambda: ml.TverskyLoss(include_background=True, to_onehot_y=True, softmax=True, alpha=0.5, beta=0.5)),
    ("focal", lambda: ml.FocalLoss(to_onehot_y=True, use_softmax=True, gamma=2.0)),
])
def test_monai_losses_match_monai(batch, name, reference):
    logits, target = batch
    assert torch.allclose(_loss(name=name)(logits, target), reference()(logits, target[:, None]), atol=1e-6)


def test_tversky_alpha_beta_hand_computed():
    # one image, two classes, hard (saturated) predictions: TP/FP/FN per class are known exactly
    logits = torch.tensor([[[[20.0, 20.0, -20.0, -20.0]], [[-20.0, -20.0, 20.0, 20.0]]]])  # predicts 0,0,1,1
    target = torch.tensor([[[0, 1, 1, 1]]])
    loss = _loss(name="tversky", params={"alpha": 0.7, "beta": 0.3})
    # class 0: tp 1, fp 1, fn 0 -> TI = 1 / (1 + .7) ; class 1: tp 2, fp 0, fn 1 -> TI = 2 / (2 + .3)
    expected = 1 - (1 / 1.7 + 2 / 2.3) / 2
    assert float(loss(logits, target)) == pytest.approx(expected, abs=1e-4)


def test_balanced_softmax_tversky_is_tversky_on_shifted_logits(batch):
    logits, target = batch
    tau = 0.7
    loss = _loss(name="balanced_softmax_tversky", params={"tau": tau, "alpha": 0.6, "beta": 0.4})
    prior = COUNTS / COUNTS.sum()
    shifted = logits + tau * torch.log(torch.tensor(prior, dtype=torch.float32)).view(1, K, 1, 1)
    probs = torch.softmax(shifted, 1)
    onehot = F.one_hot(target, K).permute(0, 3, 1, 2).float()
    dims = (2, 3)
    tp = (probs * onehot).sum(dims)
    fp = (probs * (1 - onehot)).sum(dims)
    fn = ((1 - probs) * onehot).sum(dims)
    smooth = 1e-5
    expected = (1 - (tp + smooth) / (tp + 0.6 * fp + 0.4 * fn + smooth)).mean()
    assert float(loss(logits, target)) == pytest.approx(float(expected), abs=1e-6)
    # tau = 0 is plain Tversky
    plain = ml.TverskyLoss(to_onehot_y=True, softmax=True, alpha=0.6, beta=0.4)(logits, target[:, None])
    assert torch.allclose(_loss(name="balanced_softmax_tversky", params={"tau": 0.0, "alpha": 0.6, "beta": 0.4})(logits, target), plain)


def test_class_weightings():
    f = COUNTS / COUNTS.sum()
    inv = 1 / f
    np.testing.assert_allclose(class_weights("inverse_frequency", None, K, COUNTS), inv / inv.mean())
    isq = 1 / np.sqrt(f)
    np.testing.assert_allclose(class_weights("inverse_sqrt_frequency", None, K, COUNTS), isq / isq.mean())
    en = (1 - 0.99) / (1 - 0.99 ** COUNTS)
    np.testing.assert_allclose(class_weights("effective_number", None, K, COUNTS, beta=0.99), en / en.mean())
    y = np.repeat(np.arange(K), COUNTS)
    np.testing.assert_allclose(class_weights("balanced", y, K),
                               compute_class_weight("balanced", classes=np.arange(K), y=y))
    np.testing.assert_allclose(class_weights("balanced", None, K, COUNTS),
                               compute_class_weight("balanced", classes=np.arange(K), y=y))
    # a class with no training pixels gets weight 0, not inf
    w = class_weights("inverse_frequency", None, K, np.array([10, 0, 5, 5]))
    assert w[1] == 0 and np.all(np.isfinite(w))


def test_segmentation_loss_refused_for_classification():
    with pytest.raises(BakeoffError, match="dice is for segmentation and particle picking; this study is "
                                           "multi-class / ordinal classification: expected one of"):
        build_loss(LossConfig(name="dice"), get_task("multiclass_classification", 3), np.array([0, 1, 2]))
