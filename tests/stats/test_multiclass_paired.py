"""Vectorised multi-class metrics and paired tests against torchmetrics/scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from bakeoff.config import EvaluationConfig
from bakeoff.measure.multiclass import CM_METRICS, cm_metrics
from bakeoff.stats.design import jackknife_values
from bakeoff.tasks import get_task
from tests.stats.helpers import Sample, as_paired, compare


def _probs(rng, y, K, skill):
    logits = rng.normal(size=(len(y), K)) + skill * np.eye(K)[y]
    return np.exp(logits) / np.exp(logits).sum(1, keepdims=True)


@pytest.mark.parametrize("K, drop", [(5, False), (4, True)])
def test_cm_metrics_match_the_task_and_sklearn(K, drop):
    rng = np.random.default_rng(K)
    y = rng.integers(0, K, 300)
    p = _probs(rng, y, K, 1.5)
    if drop:  # a class absent from truth and predictions
        keep = y != K - 1
        y, p = y[keep], p[keep]
        p[:, K - 1] = 0
    hard = p.argmax(1)
    cm = skm.confusion_matrix(y, hard, labels=range(K))[None]
    got = cm_metrics(cm)
    ref = get_task("ordinal_classification", K).metrics(y, p)
    for m in CM_METRICS:
        assert got[m][0] == pytest.approx(ref[m], abs=1e-6), m
    assert got["qwk"][0] == pytest.approx(skm.cohen_kappa_score(y, hard, weights="quadratic"), abs=1e-9)
    assert got["mcc"][0] == pytest.approx(skm.matthews_corrcoef(y, hard), abs=1e-9)


def test_leave_one_out_values_recomputed_by_hand_and_the_verdict():
    rng = np.random.default_rng(0)
    K = 4
    y = rng.integers(0, K, 120)
    a, b = _probs(rng, y, K, 2.5), _probs(rng, y, K, 0.5)
    runs = Sample({0: y}, {(0, 0): a}, {(0, 0): b}, num_classes=K)
    _, paired = as_paired(runs, "qwk")
    loo = jackknife_values(lambda W: paired.values((0, 0), "a", W), len(y))
    for i in (0, 57, 119):  # scikit-learn on the data without sample i
        keep = np.arange(len(y)) != i
        assert loo[i] == pytest.approx(skm.cohen_kappa_score(y[keep], a[keep].argmax(1), weights="quadratic"),
                                       abs=1e-9)
    res = compare(runs, "a", "b", EvaluationConfig(primary="qwk"), extras=False)
    assert res["verdict"] == "a better (these trained weights, 1 seed)" and res["p_value"] < 1e-6
    same = Sample({0: y}, {(0, 0): a}, {(0, 0): a}, num_classes=K)
    res = compare(same, "a", "b", EvaluationConfig(primary="accuracy"), extras=False)
    assert res["p_value"] == 1.0 and res["difference"] == 0
    brier = compare(runs, "a", "b", EvaluationConfig(primary="brier"), extras=False)
    assert brier["difference"] < 0 and brier["verdict"].startswith("a better")  # lower Brier is better
