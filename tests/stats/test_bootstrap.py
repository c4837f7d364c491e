from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from bakeoff.measure.weighted import BINARY_METRICS, weighted_binary_metrics
from bakeoff.stats.bootstrap import bootstrap_cis, bootstrap_replicates, bootstrap_weights, strata_of
from bakeoff.tasks import get_task

BINARY = get_task("binary_classification")

SK = {
    "accuracy": lambda y, p, h: skm.accuracy_score(y, h),
    "balanced_accuracy": lambda y, p, h: skm.balanced_accuracy_score(y, h),
    "precision": lambda y, p, h: skm.precision_score(y, h, zero_division=0),
    "recall": lambda y, p, h: skm.recall_score(y, h),
    "f1": lambda y, p, h: skm.f1_score(y, h, zero_division=0),
    "mcc": lambda y, p, h: skm.matthews_corrcoef(y, h),
    "auroc": lambda y, p, h: skm.roc_auc_score(y, p),
    "average_precision": lambda y, p, h: skm.average_precision_score(y, p),
    "brier": lambda y, p, h: skm.brier_score_loss(y, p),
}


def _data(n=300, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    p = np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)
    if ties:
        p = np.round(p, 1)
    return y, p


@pytest.mark.parametrize("ties", [False, True])
def test_weighted_metrics_equal_sklearn_on_resampled_arrays(ties):
    y, p = _data(ties=ties)
    W = bootstrap_weights(strata_of(y, len(y)), len(y), 5, np.random.default_rng(1))
    got = weighted_binary_metrics(p, y, W, threshold=0.4)
    for b in range(5):
        idx = np.repeat(np.arange(len(y)), W[b].astype(int))
        for name, ref in SK.items():
            expect = ref(y[idx], p[idx], (p[idx] > 0.4).astype(int))
            assert got[name][b] == pytest.approx(expect, abs=1e-12), (name, b)


def test_stratified_draws_keep_class_sizes():
    y, _ = _data()
    W = bootstrap_weights(strata_of(y, len(y)), len(y), 50, np.random.default_rng(0))
    assert W.shape == (50, len(y))
    assert (W[:, y == 1].sum(1) == (y == 1).sum()).all() and (W[:, y == 0].sum(1) == (y == 0).sum()).all()
    W = bootstrap_weights(strata_of(None, 7), 7, 50, np.random.default_rng(0))  # images: one group
    assert (W.sum(1) == 7).all() and W.std() > 0


def test_percentile_interval_matches_scipy_bootstrap_loosely():
    y, p = _data(n=400)
    ci = bootstrap_cis(BINARY, {"y": y, "probs": p}, n_boot=2000)["accuracy"]
    correct = ((p > 0.5) == y).astype(float)
    ref = stats.bootstrap((correct,), np.mean, n_resamples=4000, method="percentile", random_state=0)
    assert ci["value"] == pytest.approx(correct.mean())
    assert ci["ci_low"] == pytest.approx(ref.confidence_interval.low, abs=0.012)
    assert ci["ci_high"] == pytest.approx(ref.confidence_interval.high, abs=0.012)


def test_ten_thousand_samples_two_thousand_resamples_is_fast():
    y, p = _data(n=10_000)
    part = {"y": y, "probs": p}
    bootstrap_replicates(BINARY, part, BINARY_METRICS, n_boot=64)  # warm-up
    t0 = time.perf_counter()
    reps = bootstrap_replicates(BINARY, part, BINARY_METRICS, n_boot=2000)
    elapsed = time.perf_counter() - t0
    assert len(reps["auroc"]) == 2000
    assert elapsed < 30.0  # a guard against pathological slowness only (2.2 s alone here); bench_stats.py measures
