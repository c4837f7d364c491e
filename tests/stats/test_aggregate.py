"""Across-dataset summaries (bakeoff.stats.aggregate) against their published definitions written out
here: rliable's IQM, stratified bootstrap, probability of improvement and performance profiles (Agarwal
et al. 2021), mean ranks with Wilcoxon + Holm (statsmodels as the Holm reference), and Kendall's tau."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from bakeoff.stats.aggregate import (
    iqm,
    mean_ranks,
    performance_profile,
    probability_of_improvement,
    ranking_robustness,
    score_table,
    suite_summaries,
)


def _runs(rng, k=8, runs=5, effect=0.0):
    return {f"d{i}": {"A": list(0.7 + 0.03 * i + rng.normal(0, 0.02, runs)),
                      "B": list(0.7 + 0.03 * i + effect + rng.normal(0, 0.02, runs))} for i in range(k)}


def test_iqm_is_the_mean_of_the_middle_half():
    x = np.arange(1, 13, dtype=float)  # 12 values: the middle half is 4..9
    assert iqm(x) == pytest.approx(np.mean(np.arange(4, 10)))
    rng = np.random.default_rng(0)
    y = rng.normal(size=400)
    s = np.sort(y)
    assert iqm(y) == pytest.approx(s[100:300].mean())


def test_probability_of_improvement_counts_run_pairs_with_ties_a_half():
    x = {"d1": np.array([0.9, 0.8, 0.7]), "d2": np.array([0.5, 0.5])}
    y = {"d1": np.array([0.8, 0.6]), "d2": np.array([0.5, 0.4])}

    def by_hand(a, b):
        return np.mean([(ai > bi) + 0.5 * (ai == bi) for ai in a for bi in b])

    want = np.mean([by_hand(x["d1"], y["d1"]), by_hand(x["d2"], y["d2"])])
    assert probability_of_improvement(x, y) == pytest.approx(want)
    assert probability_of_improvement(x, x) == pytest.approx(0.5)


def test_performance_profile_is_the_fraction_above_each_threshold_averaged_over_datasets():
    runs = {"d1": [0.1, 0.5, 0.9], "d2": [0.6, 0.7]}
    t = np.array([0.0, 0.55, 0.8, 1.0])
    want = [np.mean([np.mean(np.array(v) > ti) for v in runs.values()]) for ti in t]
    assert performance_profile(runs, t) == pytest.approx(want)


def test_mean_ranks_and_wilcoxon_holm_over_datasets():
    rng = np.random.default_rng(1)
    table = pd.DataFrame(rng.uniform(size=(9, 3)), columns=["A", "B", "C"])
    table["C"] += 0.5
    r = mean_ranks(table, higher_is_better=True)
    want = table.rank(axis=1, ascending=False).mean()
    assert r["average_ranks"] == pytest.approx(want.to_dict())
    raw = [stats.wilcoxon(table[a] - table[b]).pvalue for a, b in (("A", "B"), ("A", "C"), ("B", "C"))]
    ref = multipletests(raw, method="holm")[1]
    assert [r["p_holm"]["A"]["B"], r["p_holm"]["A"]["C"], r["p_holm"]["B"]["C"]] == pytest.approx(list(ref))
    low = mean_ranks(table.iloc[:5], higher_is_better=False)  # fewer than 6 datasets: not tested, and said
    assert low["p_holm"]["A"]["B"] is None and "2/2^n" in low["note"]
    assert low["average_ranks"] == pytest.approx(table.iloc[:5].rank(axis=1, ascending=True).mean().to_dict())


def test_lower_is_better_is_negated_for_the_estimators_and_ranks_follow_the_direction():
    rng = np.random.default_rng(2)
    runs = _runs(rng, effect=0.05)  # B higher
    hi = suite_summaries(runs, {}, ["A", "B"], "x", higher_is_better=True, reps=200)
    lo = suite_summaries(runs, {}, ["A", "B"], "x", higher_is_better=False, reps=200)
    assert hi["ranks"]["average_ranks"]["B"] == 1.0 and lo["ranks"]["average_ranks"]["A"] == 1.0
    assert hi["estimates"]["probability_of_improvement"]["A > B"]["value"] < 0.1
    assert lo["estimates"]["probability_of_improvement"]["A > B"]["value"] > 0.9
    assert lo["estimates"]["iqm"]["A"]["value"] < 0 and "negated" in lo["estimates"]["oriented"]


def test_stratified_bootstrap_intervals_cover_the_estimate_and_resample_within_datasets():
    rng = np.random.default_rng(3)
    runs = _runs(rng)
    est = suite_summaries(runs, {}, ["A", "B"], "x", True, reps=400)["estimates"]
    for c in ("A", "B"):
        lo, hi = est["iqm"][c]["ci"]
        assert lo <= est["iqm"][c]["value"] <= hi and hi - lo < 0.05
    # within datasets: every dataset keeps its runs, so the mean's interval is only the within-dataset noise
    # (0.02 / sqrt(40) -> a half-width near 0.006), not the 0.03-per-dataset spread between datasets
    lo, hi = est["mean"]["A"]["ci"]
    assert hi - lo < 0.03


def test_robustness_agrees_when_one_contender_dominates_and_warns_when_aggregation_decides():
    table = pd.DataFrame({"A": [0.9, 0.8, 0.7], "B": [0.5, 0.4, 0.3]}, index=["x", "y", "z"])
    runs = {d: {c: [float(table.loc[d, c])] for c in table} for d in table.index}
    r = ranking_robustness(table, runs, {"A": 3, "B": 0}, True)
    assert r["warning"] == "" and all(w == ["A"] for w in r["winners"].values())
    assert r["kendall_tau"]["mean, then rank"]["rank, then mean rank"] == pytest.approx(1.0)
    # B wins most datasets by a little, A wins one by a lot: the mean says A, the ranks say B
    table = pd.DataFrame({"A": [0.99, 0.50, 0.50, 0.50], "B": [0.10, 0.52, 0.52, 0.52]}, index=list("wxyz"))
    runs = {d: {c: [float(table.loc[d, c])] for c in table} for d in table.index}
    r = ranking_robustness(table, runs, {"A": 0, "B": 0}, True)
    assert r["winners"]["mean, then rank"] == ["A"] and r["winners"]["rank, then mean rank"] == ["B"]
    assert "the winner depends" in r["warning"]
    assert r["kendall_tau"]["mean, then rank"]["rank, then mean rank"] == pytest.approx(-1.0)


def test_score_table_keeps_datasets_where_every_contender_has_runs():
    t = score_table({"x": {"A": [1.0, 3.0], "B": [2.0]}, "y": {"A": [1.0], "B": []}}, ["A", "B"])
    assert list(t.index) == ["x"] and t.loc["x", "A"] == 2.0


def test_wilcoxon_holm_over_datasets_rarely_separates_contenders_that_do_not_differ():
    """1,000 null suites of 8 datasets x 3 contenders (dataset difficulty shared, run noise own): any pair
    called different (Holm p < 0.05) at most alpha + 0.02 of the time."""
    rng = np.random.default_rng(7)
    wrong = 0
    for _ in range(1000):
        level = rng.uniform(0.6, 0.9, size=(8, 1))
        table = pd.DataFrame(level + rng.normal(0, 0.02, size=(8, 3)), columns=["A", "B", "C"])
        p = mean_ranks(table, True)["p_holm"]
        wrong += min(p["A"]["B"], p["A"]["C"], p["B"]["C"]) < 0.05
    print(f"false 'different' in 1,000 null suites of 8 datasets: {wrong / 1000:.3f}")
    assert wrong / 1000 <= 0.07
