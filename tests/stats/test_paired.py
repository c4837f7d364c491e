"""Each statistic against a reference implementation on the same inputs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score
from statsmodels.stats.multitest import multipletests

from bakeoff.config import EvaluationConfig
from bakeoff.stats.across import bca_interval, correlated_ttest, holm, wilcoxon
from bakeoff.stats.design import PLAN_SEEDS, reaches, required_size, simulate_power
from bakeoff.stats.paired import delong, mcnemar_exact
from bakeoff.stats.verdict import verdict
from tests.stats.helpers import Sample, compare


def test_mcnemar_exact_is_the_binomial_test_on_discordant_pairs():
    # the published scenario: 250 patches; 15 vs 7 samples that only one model gets right
    a = np.array([True] * 200 + [True] * 15 + [False] * 7 + [False] * 28)
    b = np.array([True] * 200 + [False] * 15 + [True] * 7 + [False] * 28)
    res = mcnemar_exact(a, b)
    assert (res["a_only_correct"], res["b_only_correct"]) == (15, 7)
    assert res["p_value"] == pytest.approx(stats.binomtest(7, 22, 0.5).pvalue, abs=1e-9)


def _delong_by_definition(y, pa, pb):
    """DeLong's variance straight from its definition, with O(m n) loops (the reference)."""
    y = np.asarray(y, bool)

    def psi(x, z):
        return 1.0 if x > z else (0.5 if x == z else 0.0)

    comps = []
    for p in (pa, pb):
        pos, neg = p[y], p[~y]
        v10 = np.array([np.mean([psi(x, z) for z in neg]) for x in pos])
        v01 = np.array([np.mean([psi(x, z) for x in pos]) for z in neg])
        comps.append((v10.mean(), v10, v01))
    s10 = np.cov(np.array([comps[0][1], comps[1][1]]))
    s01 = np.cov(np.array([comps[0][2], comps[1][2]]))
    m, n = y.sum(), (~y).sum()
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    return comps[0][0], comps[1][0], var


def test_delong_matches_its_definition_on_a_small_case_with_ties():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1, 0, 0])
    pa = np.array([0.9, 0.8, 0.4, 0.4, 0.2, 0.1, 0.6, 0.7, 0.3, 0.5])
    pb = np.array([0.7, 0.6, 0.6, 0.2, 0.6, 0.1, 0.3, 0.4, 0.3, 0.2])
    got = delong(y, pa, pb)
    auc_a, auc_b, var = _delong_by_definition(y, pa, pb)
    assert got["auc_a"] == pytest.approx(auc_a, abs=1e-12) == pytest.approx(roc_auc_score(y, pa))
    assert got["auc_b"] == pytest.approx(auc_b, abs=1e-12)
    assert got["se"] == pytest.approx(np.sqrt(var), abs=1e-12)
    assert got["p_value"] == pytest.approx(2 * stats.norm.sf(abs(auc_a - auc_b) / np.sqrt(var)), abs=1e-12)


def test_delong_standard_error_agrees_with_the_jackknife_on_a_large_case():
    rng = np.random.default_rng(0)
    y = (rng.random(3000) < 0.3).astype(int)
    pa = 1 / (1 + np.exp(-(1.2 * y + rng.normal(size=3000))))
    pb = 1 / (1 + np.exp(-(1.0 * y + 0.7 * rng.normal(size=3000) + 0.5 * (pa - 0.5))))
    got = delong(y, pa, pb)
    runs = Sample(y={0: y}, a={(0, 0): pa}, b={(0, 0): pb})
    res = compare(runs, "a", "b", EvaluationConfig(primary="auroc"), extras=False)
    assert got["difference"] == pytest.approx(res["difference"], abs=1e-12)
    assert got["se"] == pytest.approx(res["se"], rel=0.02)


def test_wilcoxon_only_with_six_pairs():
    five = np.array([0.01, 0.02, 0.015, 0.03, 0.012])
    res = wilcoxon(five)
    assert res["p_value"] is None and "0.0625" in res["note"]
    six = np.append(five, -0.004)
    assert wilcoxon(six)["p_value"] == pytest.approx(stats.wilcoxon(six).pvalue, abs=1e-12)


def test_bca_interval_is_scipys():
    d = np.array([0.01, 0.03, -0.005, 0.02, 0.018, 0.007, 0.011, 0.025, 0.0, 0.014])
    got = bca_interval(d, 0.95, seed=3)
    ref = stats.bootstrap((d,), np.mean, confidence_level=0.95, method="BCa", n_resamples=9999, random_state=3)
    assert got["ci_low"] == pytest.approx(ref.confidence_interval.low, abs=1e-12)
    assert got["ci_high"] == pytest.approx(ref.confidence_interval.high, abs=1e-12)
    assert bca_interval(d[:2])["ci_low"] is None


def test_holm_is_holm_not_holm_sidak():
    p = [0.01, 0.04, 0.03, 0.2]
    got = holm(p)
    assert got == pytest.approx(list(multipletests(p, method="holm")[1]), abs=1e-12)
    order = np.argsort(p)  # Holm by hand: running max of (m - i) * p_(i)
    manual = np.maximum.accumulate([(len(p) - i) * p[j] for i, j in enumerate(order)])
    expected = np.empty(len(p))
    expected[order] = np.minimum(manual, 1)
    assert got == pytest.approx(list(expected), abs=1e-12)


def test_correlated_ttest_uses_the_nadeau_bengio_posterior():
    rng = np.random.default_rng(2)
    a = 0.80 + 0.02 * rng.normal(size=10)  # 2 seeds x 5 folds
    b = a - 0.01 + 0.01 * rng.normal(size=10)
    got = correlated_ttest(a, b, rope=0.0, runs=2)
    diff = a - b
    var = np.var(diff, ddof=1) * (1 / 10 + 1 / (5 - 1))
    p_a = stats.t.sf(0, df=9, loc=diff.mean(), scale=np.sqrt(var))
    assert got["p_a_better"] == pytest.approx(p_a, abs=1e-9)
    assert "needs k-fold" in correlated_ttest(a[:3], b[:3], 0.0, runs=3)["note"]


def test_verdicts_and_what_would_decide():
    assert verdict("A", "B", 0.05, 0.02, True, p_margin=0.01) == "A better"
    assert verdict("A", "B", -0.05, 0.0, True, p_margin=0.01) == "B better"
    assert verdict("A", "B", 0.05, 0.0, False, p_margin=0.01) == "B better"  # lower is better (e.g. Brier)
    assert verdict("A", "B", 0.001, 0.02, True, p_margin=1.0, p_equivalence=0.01) == "equivalent within ±0.02"
    assert verdict("A", "B", 0.01, 0.0, True, p_margin=0.2) == "inconclusive"
    assert verdict("A", "B", 0.01, 0.02, True, p_margin=0.001) == "inconclusive"  # inside the margin
    assert verdict("A", "B", 0.001, 0.0, True, p_margin=1.0, p_equivalence=0.0) == "inconclusive"  # no margin
    # training-run variance dominates: seeds decide, test samples cannot. A pilot of 200 runs knows its
    # variance: the seeds asked for are those of the known-variance formula (the next count of the grid)
    comp = {"design": "single", "groups": [{"folds": [0], "runs": 200, "test_units": 250, "tau2": 4e-4,
                                            "shared": 1e-7, "churn": 1e-7}]}
    by_hand = next(S for S in range(2, 51)
                   if (stats.t.ppf(0.975, S - 1) + stats.norm.ppf(0.8)) * np.sqrt(4e-4 / S + 2e-7 / S + 1e-7) < 0.01)
    power = simulate_power(comp, 0.01, 0.0, 0.05, by_hand, 1.0, sims=4000)["p_better"]
    assert 0.74 <= power <= 0.90, (by_hand, power)  # the rule's df weighting makes it a little conservative
    assert simulate_power(comp, 0.01, 0.0, 0.05, by_hand // 2, 1.0, sims=4000)["p_better"] < 0.6
    # the known-variance count, or the grid's next one (80 % power assured with probability 0.75)
    grid = [s for s in PLAN_SEEDS if s >= by_hand]
    need200 = next(s for s in PLAN_SEEDS if reaches(simulate_power(comp, 0.01, 0.0, 0.05, s, 1.0, sims=2000), 0.8))
    assert need200 in grid[:2], (need200, by_hand)
    # the power each draw of the components would give (``conditional_power``): with the variance known, its
    # median is the predictive power of the simulated rule
    sim = simulate_power(comp, 0.01, 0.0, 0.05, by_hand, 1.0, sims=4000)
    assert abs(sim["power"] - sim["p_better"]) < 0.05 and sim["power_range"][1] - sim["power_range"][0] < 0.1, sim
    few = dict(comp, groups=[dict(comp["groups"][0], runs=10)])  # 10 seeds: 9 df, uncertain: more seeds or none
    need10 = required_size(few, effect=0.01, min_effect=0.0, alpha=0.05, sims=2000)["seeds"]
    assert need10 is None or need10 > need200
    wide = simulate_power(few, 0.01, 0.0, 0.05, by_hand, 1.0, sims=4000)["power_range"]
    assert wide[1] - wide[0] > sim["power_range"][1] - sim["power_range"][0]  # less known, a wider range
    three = dict(comp, groups=[dict(comp["groups"][0], runs=3)])  # 3 seeds: 2 df, more uncertain still
    need3 = required_size(three, effect=0.01, min_effect=0.0, alpha=0.05, sims=2000)["seeds"]
    assert need3 is None or (need10 is not None and need3 >= need10)
    assert required_size(comp, 0.0, 0.0, 0.05)["seeds"] is None
    one = dict(comp, groups=[dict(comp["groups"][0], runs=1, tau2=None)])  # one seed cannot plan: it says so
    assert "train 3 seeds" in required_size(one, 0.01, 0.0, 0.05)["note"]


def _simulate(rng, n, effect=0.0):
    y = (rng.random(n) < 0.3).astype(int)
    pa = 1 / (1 + np.exp(-(2.0 * (1 + effect) * (y - 0.3) + rng.normal(size=n))))
    pb = 1 / (1 + np.exp(-(2.0 * (y - 0.3) + rng.normal(size=n))))
    return y, pa, pb


def _rejections(effect: float, sims: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    hits = {"mcnemar": 0, "delong": 0, "design_t": 0}
    ev = EvaluationConfig(primary="auroc")
    for _ in range(sims):
        y, pa, pb = _simulate(rng, 200, effect)
        hits["mcnemar"] += mcnemar_exact((pa >= 0.5) == y, (pb >= 0.5) == y)["p_value"] < 0.05
        hits["delong"] += delong(y, pa, pb)["p_value"] < 0.05
        runs = Sample(y={0: y}, a={(0, 0): pa}, b={(0, 0): pb})
        hits["design_t"] += compare(runs, "a", "b", ev, extras=False)["p_value"] < 0.05
    return {k: float(v / sims) for k, v in hits.items()}


def test_false_positive_rate_under_the_null_is_at_most_007():
    # 1,000 simulations: a calibrated test's rate then has a Monte Carlo standard error of 0.007
    rates = _rejections(effect=0.0, sims=1000, seed=11)
    print("null rejection rates at alpha 0.05 (1000 simulations):", rates)
    for name, rate in rates.items():
        assert rate <= 0.07, (name, rate)


def test_a_real_effect_is_detected():
    rates = _rejections(effect=0.6, sims=100, seed=12)
    print("rejection rates under an AUROC effect (100 simulations):", rates)
    assert rates["delong"] > 0.8 and rates["design_t"] > 0.8
    assert rates["mcnemar"] > 0.3  # accuracy at a fixed threshold reacts less to a ranking gain


def test_almost_stochastic_order_is_deepsigs():
    from deepsig import aso

    from bakeoff.stats.across import almost_stochastic_order

    rng = np.random.default_rng(0)
    a, b = 0.90 + 0.01 * rng.normal(size=6), 0.85 + 0.01 * rng.normal(size=6)
    got = almost_stochastic_order(a, b, seed=3)
    assert got["eps_min"] == pytest.approx(aso(a, b, confidence_level=0.95, seed=3, show_progress=False))
    assert got["eps_min"] < 0.5 < almost_stochastic_order(b, a, seed=3)["eps_min"]
