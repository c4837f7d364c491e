"""Across datasets (bakeoff.stats.meta): the random-effects numbers against statsmodels, and simulated suites
through the same function: a false "better/worse" at most alpha + 0.02 and the prediction interval covering a
new dataset's effect, with 3, 5 and 10 datasets, effects equal across datasets or spread around zero."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects

from bakeoff.stats.meta import across_datasets


def test_the_mean_effect_and_intervals_are_the_one_sample_t_and_the_spread_is_statsmodels():
    y, se = np.array([0.1, 0.3, -0.05, 0.2, 0.12]), np.array([0.1, 0.14, 0.12, 0.1, 0.05])
    r = across_datasets("B", "A", list(y), list(se), list("abcde"))
    ttest = stats.ttest_1samp(y, 0.0)
    ci = ttest.confidence_interval(0.95)
    assert r["difference"] == pytest.approx(y.mean()) and r["p_value"] == pytest.approx(ttest.pvalue)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((ci.low, ci.high))
    ref = combine_effects(y, se ** 2, method_re="iterated")
    assert r["tau2"] == pytest.approx(ref.tau2) and r["i2"] == pytest.approx(ref.i2)
    half = stats.t.ppf(0.975, 4) * y.std(ddof=1) * np.sqrt(1 + 1 / 5)
    assert r["prediction_interval"] == pytest.approx([y.mean() - half, y.mean() + half])


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.InvalidTestWarning")
def test_why_not_hksj_weights_noisy_study_errors_make_it_claim_effects_that_are_not_there():
    """The reason the rule does not weight datasets by their studies' standard errors (module docstring):
    with 10 datasets, no effect and errors estimated from 3 seeds, HKSJ (statsmodels) is anticonservative."""
    rng = np.random.default_rng(11)
    wrong = 0
    for _ in range(1000):
        d, se, _ = _suite(rng, 10, 0.0, 0.0)
        lo, hi = combine_effects(d, se ** 2, method_re="iterated", use_t=True).summary_frame(
            use_t=True).loc["random effect wls", ["ci_low", "ci_upp"]]
        wrong += lo > 0 or hi < 0
    print(f"HKSJ, 10 datasets, no effect: false 'better/worse' {wrong / 1000:.3f}")
    assert wrong / 1000 > 0.07


def test_few_datasets_are_said_so_and_datasets_that_agree_exactly_get_the_sign_flip_bound():
    r = across_datasets("B", "A", [0.1, 0.1, 0.1], [0.05, 0.05, 0.05], ["x", "y", "z"])
    assert r["p_value"] == pytest.approx(0.25) and r["verdict"] == "inconclusive"  # 2 / 2^3: three datasets agree
    two = across_datasets("B", "A", [0.1, 0.2], [0.05, 0.05], ["x", "y"])
    assert two["prediction_interval"] is None and "too few to say anything about a new dataset" in two["notes"][0]
    one = across_datasets("B", "A", [0.1], [0.05], ["x"])
    assert one["verdict"] == "inconclusive" and "its own verdict stands" in one["notes"][0]


def test_a_against_itself_is_never_directional():
    for k in (2, 3, 6):
        r = across_datasets("A2", "A", [0.0] * k, [0.0] * k, [f"d{i}" for i in range(k)])
        assert r["verdict"] == "inconclusive", r


def _suite(rng, k, mu, tau, seeds=3):
    """k datasets: true effects theta_i ~ N(mu, tau²); each observed as the mean of ``seeds`` paired runs whose
    spread differs by dataset, with its standard error estimated from those runs (as a study's would be)."""
    theta = mu + tau * rng.normal(size=k)
    sd = rng.uniform(0.02, 0.08, size=k)
    runs = theta[:, None] + sd[:, None] * rng.normal(size=(k, seeds))
    return runs.mean(1), runs.std(1, ddof=1) / np.sqrt(seeds), mu + tau * rng.normal()


@pytest.mark.parametrize(("k", "tau", "seeds"), [(3, 0.0, 3), (5, 0.0, 3), (10, 0.0, 3), (3, 0.05, 3), (5, 0.05, 3),
                                                 (10, 0.05, 3), (3, 0.0, 1), (5, 0.05, 1), (10, 0.05, 1)])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # one seed: no per-dataset standard error (nan), as said
def test_simulated_suites_hold_alpha_and_the_prediction_interval_covers_a_new_dataset(k, tau, seeds):
    """1,000 suites under no mean effect (an estimate above 0.07 has probability 0.3% at a true rate of 0.05),
    with 3 seeds or 1 seed per dataset (then no dataset has a standard error: the rule needs none)."""
    rng = np.random.default_rng(11)
    wrong = covered = with_pi = 0
    for _ in range(1000):
        d, se, new = _suite(rng, k, 0.0, tau, seeds)
        r = across_datasets("B", "A", list(d), list(se), [str(i) for i in range(k)])
        wrong += "better" in r["verdict"]
        if r["prediction_interval"] is not None:
            with_pi += 1
            covered += r["prediction_interval"][0] <= new <= r["prediction_interval"][1]
    print(f"k={k} tau={tau} seeds={seeds}: false better/worse {wrong / 1000:.3f}, prediction coverage {covered / with_pi:.3f}")
    assert wrong / 1000 <= 0.07
    assert covered / with_pi >= 0.93


def test_a_real_mean_effect_is_found_with_enough_datasets():
    rng = np.random.default_rng(5)
    found = 0
    for _ in range(300):
        d, se, _ = _suite(rng, 10, 0.05, 0.02)
        found += across_datasets("B", "A", list(d), list(se), [str(i) for i in range(10)])["verdict"] == "B better"
    assert found / 300 >= 0.8


def test_relative_normalisation_pools_differences_as_fractions_of_the_reference_score():
    from bakeoff.stats.meta import suite_comparison

    def comp(diff, se, ref):
        return {"primary": "mae", "pairs": [{"a": "B", "b": "A", "difference": diff, "se": se, "min_effect": 0.5,
                                             "higher_is_better": False, "verdict": "inconclusive", "ci_low": diff - 1,
                                             "ci_high": diff + 1, "contenders": {"A": {"mean": ref}, "B": {}}}]}

    per = {"small": comp(-0.1, 0.02, 1.0), "large": comp(-10.0, 3.0, 100.0), "mid": comp(-1.5, 0.4, 10.0)}
    rel = suite_comparison(per, normalise="relative")["pairs"][0]
    want = across_datasets("B", "A", [-0.1, -0.1, -0.15], [0.02, 0.03, 0.04], list(per), higher_is_better=False)
    assert rel["difference"] == pytest.approx(want["difference"]) and rel["ci_low"] == pytest.approx(want["ci_low"])
    assert rel["min_effect"] == 0.0 and rel["reference_scores"] == {"small": 1.0, "large": 100.0, "mid": 10.0}
    raw = suite_comparison(per)["pairs"][0]
    assert raw["difference"] == pytest.approx(np.mean([-0.1, -10.0, -1.5])) and raw["min_effect"] == 0.5
