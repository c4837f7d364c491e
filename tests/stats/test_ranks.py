from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bakeoff.report.plots import cd_diagram
from bakeoff.stats.ranks import friedman_ranks, rank_table


def _results(k=3, seeds=5, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(seeds):
        for j in range(k):
            rows.append({"contender": f"m{j}", "seed": s, "fold": 0, "status": "done",
                         "test_auroc": 0.8 + 0.03 * j + 0.01 * rng.normal()})
    return pd.DataFrame(rows)


def test_friedman_average_ranks_and_critical_difference(tmp_path):
    df = _results(k=3, seeds=10)
    table = rank_table(df, "test_auroc", ["m0", "m1", "m2"], higher_is_better=True)
    res = friedman_ranks(table)
    ref = stats.friedmanchisquare(*[table[c] for c in table.columns])
    assert res["statistic"] == pytest.approx(ref.statistic) and res["p_value"] == pytest.approx(ref.pvalue)
    manual = table.rank(axis=1, ascending=False).mean()
    assert res["average_ranks"] == pytest.approx(manual.to_dict())
    assert res["average_ranks"]["m2"] < res["average_ranks"]["m0"]  # rank 1 is best
    # Demšar (2006), Table 5: q_0.05 = 2.343 for k = 3; CD = q * sqrt(k (k + 1) / (6 N))
    assert res["nemenyi_critical_difference"] == pytest.approx(2.343 * np.sqrt(3 * 4 / 60), abs=2e-3)
    assert cd_diagram(table, res, tmp_path / "cd.png").stat().st_size > 1000


def test_lower_is_better_and_too_few_contenders():
    df = _results(k=3).rename(columns={"test_auroc": "test_brier"})
    table = rank_table(df, "test_brier", ["m0", "m1", "m2"], higher_is_better=False)
    assert friedman_ranks(table)["average_ranks"]["m0"] < friedman_ranks(table)["average_ranks"]["m2"]
    assert friedman_ranks(rank_table(_results(k=2), "test_auroc", ["m0", "m1"], True)) is None


def test_blocks_are_folds_when_their_test_sets_are_independent():
    rows = [{"contender": f"m{j}", "seed": s, "fold": f, "status": "done", "test_auroc": 0.8 + 0.01 * j + 0.001 * s + 0.02 * f}
            for s in range(3) for f in range(4) for j in range(3)]
    df = pd.DataFrame(rows)
    table = rank_table(df, "test_auroc", ["m0", "m1", "m2"], True, independent_folds=True)
    assert table.shape == (4, 3)  # seeds averaged within each fold
    assert table.loc[2, "m1"] == pytest.approx(np.mean([0.81 + 0.001 * s + 0.04 for s in range(3)]))
    res = friedman_ranks(table, independent=True)
    assert res["n_blocks"] == 4 and res["p_value"] is not None
    shared = friedman_ranks(rank_table(df, "test_auroc", ["m0", "m1", "m2"], True), independent=False)
    assert shared["p_value"] is None and "not independent" in shared["note"]
