"""Rank stability (bootstrap ranks, Kendall's tau) by simulated studies: under A/A the bootstrap share of
A ranking first is calibrated (uniform across studies, so ranks swap about half the time on average); a
crippled contender is last in every resample; the full-data ranks equal scipy's ranks of the metric; and
the significance map mirrors the paired verdicts."""

from __future__ import annotations

import numpy as np
from scipy import stats
from sklearn.metrics import brier_score_loss, roc_auc_score

from bakeoff.stats.rank_stability import kendall_tau_b, rank_stability, significance_map
from bakeoff.tasks import get_task

TASK = get_task("binary_classification")


def _study(rng, n=200, seeds=(0, 1, 2), shifts=None):
    """Contenders' probabilities on one shared test set; ``shifts`` their signal strength (None: noise)."""
    y = (rng.random(n) < 0.4).astype(int)
    ids = np.arange(n)
    parts = {}
    for name, shift in (shifts or {}).items():
        parts[name] = {}
        for s in seeds:
            score = (shift * y if shift is not None else 0) + rng.normal(size=n)
            parts[name][(s, 0)] = {"ids": ids, "y": y, "probs": 1 / (1 + np.exp(-score))}
    return parts


def test_a_a_ranks_swap_about_half_the_time_and_calibrated():
    rng = np.random.default_rng(0)
    shares = []
    for i in range(120):
        parts = _study(rng, shifts={"a": 1.0, "b": 1.0})
        r = rank_stability(TASK, parts, "auroc", n_boot=200, seed=i)
        shares.append(r["p_first"]["a"])
        assert r["kendall_tau"]["mean"] is not None
    shares = np.array(shares)
    assert abs(shares.mean() - 0.5) < 0.07, shares.mean()
    # the bootstrap share is ~ Phi(observed difference / its SE): uniform across A/A studies
    assert stats.kstest(shares, "uniform").pvalue > 0.001, np.histogram(shares, 5)


def test_a_crippled_contender_is_last_in_every_resample_and_a_strong_one_first():
    rng = np.random.default_rng(1)
    parts = _study(rng, shifts={"strong": 3.0, "fair": 1.0, "crippled": None})
    r = rank_stability(TASK, parts, "auroc", n_boot=500)
    assert r["rank_share"]["crippled"][2] == 1.0 and r["rank_interval"]["crippled"] == [3.0, 3.0]
    assert r["p_first"]["strong"] == 1.0 and r["kendall_tau"]["median"] == 1.0
    assert r["rank"] == {"strong": 1.0, "fair": 2.0, "crippled": 3.0}
    assert abs(sum(r["rank_share"]["fair"]) - 1) < 1e-12


def test_full_data_values_and_ranks_equal_sklearn_and_scipy():
    rng = np.random.default_rng(2)
    parts = _study(rng, shifts={"a": 0.5, "b": 1.0, "c": 0.8})
    r = rank_stability(TASK, parts, "auroc", n_boot=50)
    ref = {c: np.mean([roc_auc_score(p["y"], p["probs"]) for p in runs.values()]) for c, runs in parts.items()}
    for c in parts:
        assert abs(r["value"][c] - ref[c]) < 1e-12
    expected = stats.rankdata([-ref[c] for c in parts])
    assert [r["rank"][c] for c in parts] == list(expected)
    # lower-is-better metrics rank the smallest first (Brier score)
    rb = rank_stability(TASK, parts, "brier", n_boot=50)
    brier = {c: np.mean([brier_score_loss(p["y"], p["probs"]) for p in runs.values()]) for c, runs in parts.items()}
    assert not rb["higher_is_better"]
    assert [rb["rank"][c] for c in parts] == list(stats.rankdata([brier[c] for c in parts]))


def test_kendall_tau_b_equals_scipy_for_every_replicate_ties_included():
    rng = np.random.default_rng(3)
    for k in (2, 3, 5, 8):
        x = stats.rankdata(rng.integers(0, 3, k))  # ties in the full-data ranking too
        Y = np.stack([stats.rankdata(rng.integers(0, k, k)) for _ in range(200)], axis=1)
        Y[:, 0] = 1.0  # every value tied: no tau (scipy gives nan)
        got = kendall_tau_b(x, Y)
        want = np.array([stats.kendalltau(x, Y[:, b]).statistic for b in range(Y.shape[1])])
        np.testing.assert_allclose(got, want, atol=1e-12, equal_nan=True)
        assert np.isnan(got[0])


def test_significance_map_mirrors_the_verdicts():
    pairs = [{"a": "x", "b": "y", "verdict": "x better"}, {"a": "x", "b": "z", "verdict": "inconclusive"},
             {"a": "y", "b": "z", "verdict": "z better"}]
    cells = significance_map(pairs, ["x", "y", "z"])["cells"]
    assert cells["x"]["y"] == "better" and cells["y"]["x"] == "worse"
    assert cells["z"]["y"] == "better" and cells["x"]["z"] == cells["z"]["x"] == "inconclusive"
    assert cells["x"]["x"] is None


def test_significance_map_carries_each_verdicts_scope():
    """One seed per contender: the map's 'better' is about the trained weights, as the pair's verdict says."""
    pairs = [{"a": "x", "b": "y", "verdict": "x better (these trained weights, 1 seed)", "scope": "trained weights"},
             {"a": "x", "b": "z", "verdict": "inconclusive", "scope": "trained weights"}]
    sig = significance_map(pairs, ["x", "y", "z"])
    assert sig["cells"]["x"]["y"] == "better" and sig["scopes"]["y"]["x"] == "trained weights"
    assert "not their architectures" in sig["scope_note"]
    recipe = significance_map([{"a": "x", "b": "y", "verdict": "y better", "scope": "training recipe"}], ["x", "y"])
    assert recipe["scopes"]["x"]["y"] == "training recipe" and "scope_note" not in recipe
