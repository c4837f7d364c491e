from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from bakeoff.tasks import get_task, metric_info


@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_binary_metrics_match_sklearn(threshold):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.clip(0.35 * y + 0.65 * rng.random(500), 0, 1)
    hard = (p >= threshold).astype(int)
    got = get_task("binary_classification").metrics(y, p, threshold)
    ref = {
        "accuracy": skm.accuracy_score(y, hard), "balanced_accuracy": skm.balanced_accuracy_score(y, hard),
        "precision": skm.precision_score(y, hard), "recall": skm.recall_score(y, hard),
        "f1": skm.f1_score(y, hard), "mcc": skm.matthews_corrcoef(y, hard), "auroc": skm.roc_auc_score(y, p),
        "average_precision": skm.average_precision_score(y, p), "brier": skm.brier_score_loss(y, p),
    }
    assert set(got) == set(ref)
    for k in ref:
        assert got[k] == pytest.approx(ref[k], abs=1e-6), k
    cm = get_task("binary_classification").confusion_matrix(y, p, threshold)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y, hard))


def test_multiclass_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 400)
    logits = rng.normal(size=(400, 4)) + 1.5 * np.eye(4)[y]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    hard = p.argmax(1)
    got = get_task("multiclass_classification", 4).metrics(y, p)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, hard), abs=1e-6)
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, hard), abs=1e-6)
    assert got["f1"] == pytest.approx(skm.f1_score(y, hard, average="macro"), abs=1e-6)
    assert got["mcc"] == pytest.approx(skm.matthews_corrcoef(y, hard), abs=1e-6)
    assert got["auroc"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr"), abs=1e-6)


def test_metric_directions_come_from_the_registry():
    for task in ("binary_classification", "ordinal_classification", "semantic_segmentation", "particle_picking"):
        for name in get_task(task, 3 if task.startswith(("ordinal", "semantic")) else 2).metric_names:
            assert metric_info(name, task).name == name
    assert metric_info("brier").higher_is_better is False and metric_info("auroc").threshold_free
    assert not metric_info("accuracy").threshold_free
    assert metric_info("hd95_nucleus", "semantic_segmentation").higher_is_better is False
    assert metric_info("f1_class2", "multiclass_classification").higher_is_better is True
    with pytest.raises(KeyError):
        metric_info("hd95_nucleus")  # a per-class name means something only within its task


def test_mcc_is_zero_when_predictions_hold_one_class():
    y = np.array([0, 1, 0, 1, 1])
    p = np.full(5, 0.9)
    assert get_task("binary_classification").metrics(y, p)["mcc"] == skm.matthews_corrcoef(y, p >= 0.5) == 0
