"""Vectorised multi-class metrics and paired tests against torchmetrics/scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from bakeoff.stats.multiclass import (
    CM_METRICS,
    MulticlassRuns,
    cm_metrics,
    multiclass_bootstrap,
    multiclass_permutation,
)
from bakeoff.tasks import get_task


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


def test_bootstrap_replicate_recomputed_by_hand_and_permutation():
    rng = np.random.default_rng(0)
    K = 4
    y = rng.integers(0, K, 120)
    a, b = _probs(rng, y, K, 2.5), _probs(rng, y, K, 0.5)
    runs = MulticlassRuns({0: y}, {(0, 0): a}, {(0, 0): b}, K)
    reps = multiclass_bootstrap(runs, "qwk", 50, seed=3)
    # replicate 0 by hand: the same stratified draw, then scikit-learn on the resampled arrays
    r = np.random.default_rng(3)
    idx = np.concatenate([np.flatnonzero(y == c)[r.integers(0, np.sum(y == c), size=(50, np.sum(y == c)))][0]
                          for c in np.unique(y)])
    by_hand = (skm.cohen_kappa_score(y[idx], a[idx].argmax(1), weights="quadratic")
               - skm.cohen_kappa_score(y[idx], b[idx].argmax(1), weights="quadratic"))
    assert reps[0] == pytest.approx(by_hand, abs=1e-9)
    assert multiclass_permutation(runs, "qwk", 199) < 0.05
    same = MulticlassRuns({0: y}, {(0, 0): a}, {(0, 0): a}, K)
    assert multiclass_permutation(same, "accuracy", 99) == 1.0
    brier = multiclass_bootstrap(runs, "brier", 20)
    assert np.all(brier < 0)  # the skilled contender has the lower Brier score in every replicate
