"""Intervals inside the metric's range (issue 22): a contender's own interval on the logit scale of the
metric's range, a difference's interval within +-(hi - lo); coverage checked by simulation against the
true AUROC of the generating model (normal scores: AUROC = Phi(sep / sqrt(2 var)))."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bakeoff.config import EvaluationConfig
from bakeoff.tasks import metric_info
from tests.stats.helpers import Sample, compare


def _study(rng, sep_a, sep_b, seeds=3, n=40, positives=6):
    """One test set of ``n`` samples with ``positives`` positives; each run scores sample i as
    sep * y_i + z_i + e (z: the sample's difficulty, shared by every run; e: the run's own noise)."""
    y = np.zeros(n, int)
    y[:positives] = 1
    z = rng.normal(0, 0.6, n)

    def run(sep):
        return 1 / (1 + np.exp(-(sep * y + z + rng.normal(0, 0.8, n) - sep / 2)))

    return Sample(y={0: y}, a={(s, 0): run(sep_a) for s in range(seeds)}, b={(s, 0): run(sep_b) for s in range(seeds)})


def _true_auroc(sep):
    return float(stats.norm.cdf(sep / np.sqrt(2 * (0.6 ** 2 + 0.8 ** 2))))


@pytest.mark.parametrize("seeds, sep", [(1, 1.46), (3, 1.46), (1, 2.2), (3, 2.2)])
def test_own_auroc_interval_covers_and_stays_in_range_on_40_samples_with_6_positives(seeds, sep):
    """True AUROC 0.85 and 0.94 (where a symmetric interval runs past 1)."""
    rng = np.random.default_rng(7)
    ev = EvaluationConfig(primary="auroc", n_boot=200, n_permutations=99)
    truth = _true_auroc(sep)
    hits, sims = 0, 400
    for _ in range(sims):
        res = compare(_study(rng, sep, 1.0, seeds=seeds), "A", "B", ev, extras=False)
        ci = res["contenders"]["A"]
        assert 0.0 <= ci["ci_low"] <= ci["mean"] <= ci["ci_high"] <= 1.0, ci
        hits += ci["ci_low"] <= truth <= ci["ci_high"]
        assert -1.0 <= res["ci_low"] <= res["ci_high"] <= 1.0
    print(f"{seeds} seed(s): coverage of the true AUROC {truth:.3f}: {hits / sims:.3f}")
    assert hits / sims >= 0.93


def test_metric_ranges_are_declared():
    assert metric_info("auroc", "binary_classification").bounds == (0.0, 1.0)
    assert metric_info("mcc", "binary_classification").bounds == (-1.0, 1.0)
    assert metric_info("qwk", "ordinal_classification").bounds == (-1.0, 1.0)
    assert metric_info("brier", "multiclass_classification").bounds == (0.0, 2.0)
    assert metric_info("mean_hd95", "semantic_segmentation").bounds == (0.0, float("inf"))
    assert metric_info("mean_dice", "semantic_segmentation").bounds == (0.0, 1.0)
