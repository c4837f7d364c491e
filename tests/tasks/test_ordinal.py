"""Multi-class and ordinal metrics against scikit-learn on the same predictions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from bakeoff.tasks import get_task


@pytest.mark.parametrize("task_name", ["multiclass_classification", "ordinal_classification"])
def test_qwk_f1_auroc_per_class_match_sklearn(task_name):
    rng = np.random.default_rng(0)
    K, n = 5, 400
    y = rng.integers(0, K, n)
    logits = rng.normal(size=(n, K)) + 2.0 * np.eye(K)[np.clip(y + rng.integers(-1, 2, n), 0, K - 1)]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    task = get_task(task_name, K)
    m = task.metrics(y, probs)
    hard = probs.argmax(1)
    assert m["qwk"] == pytest.approx(skm.cohen_kappa_score(y, hard, weights="quadratic"), abs=1e-6)
    assert m["f1"] == pytest.approx(skm.f1_score(y, hard, average="macro"), abs=1e-6)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, hard), abs=1e-6)
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, hard), abs=1e-6)
    assert m["auroc"] == pytest.approx(skm.roc_auc_score(y, probs, multi_class="ovr", average="macro"), abs=1e-6)
    p, r, f, _ = skm.precision_recall_fscore_support(y, hard, labels=range(K), zero_division=0)
    for k in range(K):
        assert m[f"precision_class{k}"] == pytest.approx(p[k], abs=1e-6)
        assert m[f"recall_class{k}"] == pytest.approx(r[k], abs=1e-6)
        assert m[f"f1_class{k}"] == pytest.approx(f[k], abs=1e-6)
    np.testing.assert_array_equal(task.confusion_matrix(y, probs), skm.confusion_matrix(y, hard, labels=range(K)))


def test_ordinal_study_defaults_to_qwk():
    from bakeoff.tasks import validate_study

    s = validate_study({"name": "o", "task": "ordinal_classification", "contenders": {"a": {"model": "bakeoff:se_resnet"}}})
    assert s.evaluation.primary == "qwk" and s.protocol.select.monitor == "val/qwk"
