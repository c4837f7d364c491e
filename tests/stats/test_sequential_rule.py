"""The sequential rule's pieces against references: Lan–DeMets boundaries (published Pocock-type values;
crossing probabilities from scipy's multivariate normal) and the information fractions of a shared test set."""

import numpy as np
from scipy import stats

from bakeoff.stats.sequential import (
    _crossing_level,
    information_fraction,
    look_fractions,
    nominal_levels,
    spent,
)


def _crossing_by_look(t, levels):
    """P(crossing by each look) for boundaries ``levels`` at fractions ``t``: box probabilities of the
    correlated normal (corr sqrt(t_i / t_j)) from scipy's multivariate normal, an independent reference."""
    t = np.asarray(t, float)
    c = stats.norm.isf(np.asarray(levels) / 2)
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    out = []
    for k in range(1, len(t) + 1):
        inside = stats.multivariate_normal(np.zeros(k), cov[:k, :k]).cdf(c[:k], lower_limit=-c[:k])
        out.append(1 - inside)
    return np.array(out)


def test_obrien_fleming_type_levels_spend_what_the_function_says():
    # O'Brien–Fleming-type spending 2 - 2 Phi(z_{alpha/2} / sqrt(t)) over the two-sided alpha
    t = (2, 3, 4)
    levels = nominal_levels(t, 4, 0.05, "obrien_fleming")
    want = spent(np.array(t) / 4, 0.05, "obrien_fleming")
    assert np.allclose(_crossing_by_look(np.array(t) / 4, levels), want, atol=0.0015)
    assert abs(want[-1] - 0.05) < 1e-12


def test_pocock_type_boundaries_match_ldbounds():
    # ldbounds::ldBounds(t = 1:5/5, iuse = 2, alpha = 0.025, sides = 2)
    published = [2.4380, 2.4268, 2.4101, 2.3966, 2.3859]
    levels = nominal_levels((1, 2, 3, 4, 5), 5, 0.05, "pocock")
    assert np.allclose([stats.norm.isf(lv / 2) for lv in levels], published, atol=0.03)


def test_the_whole_spending_is_spent_and_no_more():
    t = np.array([0.7, 0.8, 0.9, 1.0])
    cum = spent(t, 0.05, "obrien_fleming")
    past: list[float] = []
    for k in range(len(t)):
        past.append(_crossing_level(t[:k + 1], past, cum[k] - (cum[k - 1] if k else 0.0)))
    # each look crosses with the probability spent; with looks this correlated the first level is near the
    # alpha spent by then, 50x the level of a first look at t = seeds / max = 0.3
    assert past[0] > 0.015 > 50 * nominal_levels((3, 4, 5, 6, 7, 8, 9, 10), 10, 0.05, "obrien_fleming")[0]
    assert np.allclose(_crossing_by_look(t, past), cum, atol=0.0015)


def _comp(run_var, shared, runs=3):
    return {"design": "single", "pooled_over_folds": False, "groups": [
        {"folds": [0], "runs": runs, "test_units": 200, "tau2": 0.0, "shared": shared, "churn": run_var,
         "run_var": run_var}]}


def test_information_grows_with_the_seeds_only_as_far_as_the_test_set_allows():
    # nothing shared: information is proportional to the seeds
    assert abs(information_fraction(_comp(1e-3, 0.0), 3, 3, 10) - 0.3) < 1e-12
    # a shared test set that dominates: three seeds hold most of the budget's information
    f = information_fraction(_comp(1e-4, 1e-3), 3, 3, 10)
    assert 0.85 < f < 1.0
    # monotone in the seeds, 1 at the budget
    fs = [information_fraction(_comp(2e-4, 1e-4), 3, n, 10) for n in range(3, 11)]
    assert all(np.diff(fs) > 0) and fs[-1] == 1.0
    # one run per test set cannot say: the look falls back to seeds / max_seeds
    assert information_fraction(_comp(1e-4, 1e-3, runs=1), 1, 1, 10) is None
    pairs = [{"design": {"components": _comp(1e-4, 1e-3, runs=1)}}]
    assert np.allclose(look_fractions(pairs, 3, (3, 4), 10), [0.3, 0.4])


def test_the_most_cautious_pair_sets_the_fractions():
    pairs = [{"design": {"components": _comp(1e-4, 1e-3)}}, {"design": {"components": _comp(1e-3, 1e-5)}}]
    t = look_fractions(pairs, 3, (3, 4, 5), 10)
    alone = [information_fraction(_comp(1e-3, 1e-5), 3, n, 10) for n in (3, 4, 5)]
    assert np.allclose(t, np.maximum(alone, np.array([3, 4, 5]) / 10))
