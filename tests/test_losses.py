from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bakeoff.config import LossConfig
from bakeoff.errors import BakeoffError
from bakeoff.losses import WeightedBCE, build_loss, class_weights
from bakeoff.tasks import get_task


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
    ce = build_loss(LossConfig(name="ce", class_weights="balanced"), get_task("multiclass_classification", 3), y)
    assert torch.allclose(ce.weight, torch.tensor(class_weights("balanced", y, 3), dtype=torch.float32))
    with pytest.raises(BakeoffError, match=r"bce is for binary classification \(one logit\); this study is multi"):
        build_loss(LossConfig(name="bce"), get_task("multiclass_classification", 3), y)


def test_loss_params_are_checked_with_close_matches():
    from bakeoff.losses import build_loss as build

    with pytest.raises(BakeoffError, match=r"unknown parameter\(s\) \['alpah'\] \('alpah': did you mean 'alpha'\?\)"):
        build(LossConfig(name="tversky", params={"alpah": 0.3}), get_task("semantic_segmentation", 3), None,
              counts=np.ones(3))
    with pytest.raises(BakeoffError, match=r"unknown loss 'dice_c' \(did you mean 'dice_ce'\?\)"):
        build(LossConfig(name="dice_c"), get_task("semantic_segmentation", 3), None, counts=np.ones(3))
    with pytest.raises(Exception, match="a loss's own settings go under params; expected loss: "
                                        r"\{name: tversky, params: \{alpha: 0.3\}\}"):
        LossConfig(name="tversky", alpha=0.3)


def test_a_users_own_loss_from_the_study_file(tmp_path, tiny_raw, monkeypatch):
    """``loss: {name: package.module:callable, params: ...}``: no change to bakeoff, parameters checked."""
    import json

    from bakeoff.api import Study

    (tmp_path / "mylosses.py").write_text(
        "import torch\n"
        "import torch.nn.functional as F\n\n"
        "CALLS = []\n\n"
        "class Smoothed(torch.nn.Module):\n"
        "    def __init__(self, eps):\n"
        "        super().__init__()\n"
        "        self.eps = eps\n\n"
        "    def forward(self, logits, target):\n"
        "        return F.binary_cross_entropy_with_logits(logits[:, 0], target * (1 - self.eps) + self.eps / 2)\n\n"
        "def smoothed_bce(num_classes, eps=0.0):\n"
        "    CALLS.append((num_classes, eps))\n"
        "    return Smoothed(eps)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    tiny_raw["protocol"].update(seeds=[0], epochs=1, loss={"name": "mylosses:smoothed_bce", "params": {"eps": 0.1}})
    tiny_raw["evaluation"]["speed"] = False
    Study.from_dict(tiny_raw).run(tmp_path / "o")
    import mylosses

    assert (2, 0.1) in mylosses.CALLS
    info = json.loads((tmp_path / "o" / "runs" / "cnn" / "seed0-fold0" / "run.json").read_text())
    assert info["status"] == "done" and info["protocol"]["loss"]["name"] == "mylosses:smoothed_bce"
    tiny_raw["protocol"]["loss"]["params"] = {"epsilon": 0.1}
    with pytest.raises(BakeoffError, match=r"protocol.loss \(mylosses:smoothed_bce\): unknown parameter\(s\) "
                                           r"\['epsilon'\]"):
        Study.from_dict(tiny_raw).plan()
