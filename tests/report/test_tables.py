from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bakeoff.stats.tables import seed_and_fold_std, summarize, t_interval


def test_t_interval_matches_scipy():
    v = np.array([0.91, 0.93, 0.92, 0.95])
    lo, hi = t_interval(v)
    ref = stats.t.interval(0.95, 3, loc=v.mean(), scale=stats.sem(v))
    assert (lo, hi) == pytest.approx(ref)
    assert np.isnan(t_interval(v[:1])[0])


def test_seed_and_fold_spread_are_reported_apart():
    df = pd.DataFrame({"contender": "a", "status": "done", "seed": [0, 1, 0, 1, 0, 1], "fold": [0, 0, 1, 1, 2, 2],
                       "run_id": list("abcdef"), "test_auroc": [0.90, 0.92, 0.80, 0.82, 0.70, 0.72]})
    got = seed_and_fold_std(df, ["test_auroc"])["test_auroc"]
    assert got["std_seed"] == pytest.approx(np.std([0.90, 0.92], ddof=1))
    assert got["std_fold"] == pytest.approx(np.std([0.91, 0.81, 0.71], ddof=1))
    s = summarize(df, ["a"]).set_index("metric").loc["test_auroc"]
    assert s["mean"] == pytest.approx(0.81) and s["n"] == 6


def test_seed_and_fold_spreads_equal_a_pivot_per_column_with_missing_values():
    """One grouping for every column gives what a pivot table per column gives, gaps included (a seed
    missing in one fold, a column missing for a whole seed, a column with one value)."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"seed": np.repeat([0, 1, 2], 4), "fold": np.tile([0, 1, 2, 3], 3)})
    df["a"] = rng.random(len(df))
    df["b"] = np.where(df["seed"] == 2, np.nan, rng.random(len(df)))
    df["c"] = np.where(df["fold"] == 1, np.nan, rng.random(len(df)))
    df["one"] = np.where(np.arange(len(df)) == 5, 0.3, np.nan)
    df = df.drop(index=[4]).reset_index(drop=True)  # seed 1 fold 0 did not run
    got = seed_and_fold_std(df, ["a", "b", "c", "one"])
    for col in ("a", "b", "c", "one"):
        grid = df.pivot_table(index="fold", columns="seed", values=col, aggfunc="first")
        want_seed = float(grid.std(axis=1, ddof=1).mean()) if grid.shape[1] > 1 else np.nan
        want_fold = float(grid.mean(axis=1).std(ddof=1)) if grid.shape[0] > 1 else np.nan
        assert got[col]["std_seed"] == pytest.approx(want_seed, nan_ok=True), col
        assert got[col]["std_fold"] == pytest.approx(want_fold, nan_ok=True), col


@pytest.mark.parametrize("rule", ["youden", "f1"])
def test_validation_threshold_is_the_brute_force_optimum(rule):
    from sklearn.metrics import f1_score

    from bakeoff.measure.metrics import choose_threshold

    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.3).astype(int)
    p = np.clip(0.3 * y + 0.7 * rng.random(200), 0, 1)
    thr = choose_threshold(y, p, rule)

    def score(t):
        h = (p >= t).astype(int)
        if rule == "f1":
            return f1_score(y, h)
        return h[y == 1].mean() - h[y == 0].mean()

    assert score(thr) == pytest.approx(max(score(t) for t in np.unique(p)))
