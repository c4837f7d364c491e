from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from bakeoff.stats.bootstrap import bootstrap_cis, bootstrap_replicates
from bakeoff.stats.weighted import binary_metrics, stratified_draws

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
    dpos, dneg = stratified_draws(y, 5, np.random.default_rng(1))
    got = binary_metrics(p, dpos, dneg, threshold=0.4)
    for b in range(5):
        idx = np.concatenate([dpos[b], dneg[b]])
        for name, ref in SK.items():
            expect = ref(y[idx], p[idx], (p[idx] >= 0.4).astype(int))
            assert got[name][b] == pytest.approx(expect, abs=1e-12), (name, b)


def test_stratified_draws_keep_class_sizes():
    y, _ = _data()
    dpos, dneg = stratified_draws(y, 50, np.random.default_rng(0))
    assert dpos.shape == (50, (y == 1).sum()) and np.all(y[dpos] == 1)
    assert dneg.shape == (50, (y == 0).sum()) and np.all(y[dneg] == 0)


def test_percentile_interval_matches_scipy_bootstrap_loosely():
    y, p = _data(n=400)
    ci = bootstrap_cis(y, p, n_boot=2000)["accuracy"]
    correct = ((p >= 0.5) == y).astype(float)
    ref = stats.bootstrap((correct,), np.mean, n_resamples=4000, method="percentile", random_state=0)
    assert ci["value"] == pytest.approx(correct.mean())
    assert ci["ci_low"] == pytest.approx(ref.confidence_interval.low, abs=0.012)
    assert ci["ci_high"] == pytest.approx(ref.confidence_interval.high, abs=0.012)


def test_ten_thousand_samples_two_thousand_resamples_is_fast():
    y, p = _data(n=10_000)
    bootstrap_replicates(y, p, n_boot=64)  # warm-up
    t0 = time.perf_counter()
    reps = bootstrap_replicates(y, p, n_boot=2000)
    elapsed = time.perf_counter() - t0
    assert len(reps["auroc"]) == 2000
    assert elapsed < 5.0  # a correctness guard only; the measured figure is in benchmarks/bench_stats.py
