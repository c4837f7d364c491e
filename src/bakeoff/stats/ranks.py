"""Three or more contenders: Friedman test, average ranks and a critical-difference diagram (Demšar 2006).

Nemenyi's outcome depends on which other contenders are in the pool, so bakeoff's pairwise verdicts come
from the paired tests with Holm; the diagram (``report.plots.cd_diagram``) is a picture of ranks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats


def rank_table(df: pd.DataFrame, metric_col: str, order: list[str], higher_is_better: bool,
               independent_folds: bool = False) -> pd.DataFrame:
    """Blocks x contenders of the metric, complete blocks only. Blocks are (seed, fold) runs, or, when
    the folds' test sets are disjoint (``independent_folds``), the folds with their seeds averaged: the
    only blocks that are independent replicates."""
    done = df[df["status"] == "done"]
    table = done.pivot_table(index=["seed", "fold"], columns="contender", values=metric_col, aggfunc="first")
    table = table[[c for c in order if c in table.columns]].dropna()
    if independent_folds:
        table = table.groupby(level="fold").mean()
    table.attrs["independent"] = independent_folds
    return table if higher_is_better else -table


def friedman_ranks(table: pd.DataFrame, alpha: float = 0.05, independent: bool = True) -> dict[str, Any] | None:
    """Average ranks (1 = best); with independent blocks also Friedman's chi-square (scipy) and Nemenyi's
    critical difference. Blocks that share one test set (seeds on a holdout split) are not independent
    replicates: Friedman would reject far too often, so only the ranks are given, labelled as such."""
    k, n = table.shape[1], table.shape[0]
    if k < 3 or n < 1:
        return None
    ranks = table.rank(axis=1, ascending=False, method="average").mean()
    out = {"n_blocks": n, "average_ranks": {c: float(r) for c, r in ranks.items()}, "alpha": alpha,
           "independent_blocks": independent}
    if not independent or n < 2:
        return {**out, "test": None, "p_value": None, "statistic": None, "nemenyi_critical_difference": None,
                "note": "ranks only: the blocks share one test set (or there is one block), so they are not "
                        "independent replicates and no Friedman test is run; pairwise verdicts come from the "
                        "design-aware paired tests with Holm"}
    stat, p = stats.friedmanchisquare(*[table[c].to_numpy() for c in table.columns])
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2)
    cd = float(q * np.sqrt(k * (k + 1) / (6 * n)))
    return {**out, "test": "Friedman chi-square (scipy.stats.friedmanchisquare) over independent test sets",
            "statistic": float(stat), "p_value": float(p), "nemenyi_critical_difference": cd,
            "note": "ranks picture the pool; pairwise verdicts come from the paired tests with Holm"}
