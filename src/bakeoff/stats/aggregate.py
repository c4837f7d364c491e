"""Across datasets, the summaries people know: mean ranks with a critical-difference picture, IQM with
stratified-bootstrap intervals, probability of improvement, performance profiles, and how much the ranking
depends on the way scores are aggregated. The verdicts across datasets come from ``stats.meta``; these are
descriptions beside them.

Scores are one number per (dataset, contender, run): the runs' test scores on the suite's primary metric,
as each dataset's ``results.csv`` holds them. Every dataset uses the same metric, so the scores are not
rescaled; a metric where lower is better is negated for the "higher is better" estimators and said so.

* **Mean ranks and pairwise Wilcoxon + Holm.** Contenders are ranked within each dataset (on the mean of
  its runs, 1 = best, ties averaged) and the ranks averaged. Pairs are tested with the Wilcoxon
  signed-rank test over datasets and Holm's adjustment, as Benavoli, Corani & Mangili (2016) advise
  instead of the mean-rank post-hocs (Nemenyi), whose result depends on which other contenders are in
  the pool. With fewer than 6 datasets no pair can reach p < 0.05 (the exact two-sided p is at least
  2 / 2**n), so the test is not run and the result says so.
* **IQM, probability of improvement, performance profiles** (Agarwal et al. 2021, rliable). rliable's
  repository is archived, so its estimators are written here on scipy, following its published
  definitions (``tests/stats/test_aggregate.py`` checks them against those formulas written out):
  IQM = the 25 % trimmed mean of all runs of all datasets (``scipy.stats.trim_mean``); the stratified
  bootstrap resamples runs with replacement within each dataset; P(X > Y) on a dataset is the
  Mann-Whitney U statistic of X's runs over Y's runs divided by the number of run pairs (ties count a
  half), averaged over datasets; a performance profile is, for each threshold t, the fraction of runs
  scoring above t, averaged over datasets.
* **Ranking robustness** (Maier-Hein et al. 2018; challengeR, Wiesenfarth et al. 2021): the ranking by
  the mean, median and IQM of the scores (aggregate, then rank), by the mean rank (rank, then aggregate)
  and by significant wins in each dataset's own verdicts (test, then rank), and Kendall's tau between
  every two of them; a warning when the winner depends on the choice.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from bakeoff.stats.across import MIN_WILCOXON_PAIRS, holm

Runs = dict[str, dict[str, list[float]]]  # dataset -> contender -> run scores


def _oriented(runs: Runs, higher_is_better: bool) -> Runs:
    sign = 1.0 if higher_is_better else -1.0
    return {d: {c: [sign * float(v) for v in vs if np.isfinite(v)] for c, vs in by.items()} for d, by in runs.items()}


def score_table(runs: Runs, contenders: list[str]) -> pd.DataFrame:
    """Datasets x contenders: the mean of each contender's runs on each dataset (complete rows only)."""
    table = pd.DataFrame({d: {c: float(np.mean(by[c])) if by.get(c) else np.nan for c in contenders}
                          for d, by in runs.items()}).T
    return table[contenders].dropna()


def mean_ranks(table: pd.DataFrame, higher_is_better: bool, alpha: float = 0.05) -> dict[str, Any]:
    """Average ranks over datasets (1 = best) and every pair's Wilcoxon signed-rank p over datasets,
    Holm-adjusted (``p_holm[a][b]``; None when there are too few datasets to run it)."""
    contenders = list(table.columns)
    ranks = table.rank(axis=1, ascending=not higher_is_better, method="average")
    avg = ranks.mean()
    n = len(table)
    pairs = list(combinations(contenders, 2))
    raw: list[float | None] = []
    for a, b in pairs:
        d = (table[a] - table[b]).to_numpy()
        nonzero = int(np.sum(d != 0))
        raw.append(float(stats.wilcoxon(d).pvalue) if nonzero >= MIN_WILCOXON_PAIRS else None)
    tested = [p for p in raw if p is not None]
    adjusted = iter(holm(tested))
    p_holm: dict[str, dict[str, float | None]] = {a: {b: (1.0 if a == b else None) for b in contenders}
                                                  for a in contenders}
    for (a, b), p in zip(pairs, raw):
        if p is not None:
            p_holm[a][b] = p_holm[b][a] = next(adjusted)
    note = ("" if all(p is not None for p in raw) else
            f"Wilcoxon not run for pairs with fewer than {MIN_WILCOXON_PAIRS} datasets that differ: with n "
            f"datasets the smallest two-sided p is 2/2^n ({2 / 2 ** max(n, 1):.3f} with {n}), so no pair "
            f"could be called different; the ranks are a description")
    return {"n_datasets": n, "average_ranks": {c: float(avg[c]) for c in contenders},
            "ranks": {d: {c: float(ranks.loc[d, c]) for c in contenders} for d in table.index},
            "test": "Wilcoxon signed-rank over datasets (scipy.stats.wilcoxon), Holm over the pairs",
            "alpha": alpha, "p_holm": p_holm, "note": note}


def iqm(x: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50 % (``scipy.stats.trim_mean(x, 0.25)``)."""
    return float(stats.trim_mean(np.asarray(x, float).ravel(), 0.25))


def _resample(runs: dict[str, list[float]], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One stratified-bootstrap draw: each dataset's runs resampled with replacement, within the dataset."""
    return {d: np.asarray(v)[rng.integers(0, len(v), len(v))] for d, v in runs.items()}


def _percentile(draws: list[float], level: float) -> list[float]:
    lo, hi = np.percentile(draws, [50 * (1 - level), 50 * (1 + level)])
    return [float(lo), float(hi)]


def probability_of_improvement(x: dict[str, np.ndarray], y: dict[str, np.ndarray]) -> float:
    """P(X > Y): per dataset U / (n_x n_y) (Mann-Whitney, ties a half), averaged over the datasets."""
    per = []
    for d in x:
        a, b = np.asarray(x[d], float), np.asarray(y[d], float)
        if len(a) == len(b) and np.array_equal(np.sort(a), np.sort(b)):
            per.append(0.5)
        else:
            per.append(float(stats.mannwhitneyu(a, b, alternative="greater").statistic) / (len(a) * len(b)))
    return float(np.mean(per))


def performance_profile(runs: dict[str, list[float]], thresholds: np.ndarray) -> list[float]:
    """For each threshold, the fraction of runs scoring above it, averaged over datasets."""
    return [float(np.mean([np.mean(np.asarray(v) > t) for v in runs.values()])) for t in thresholds]


def interval_estimates(runs: Runs, contenders: list[str], higher_is_better: bool, *, reps: int = 2000,
                       level: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """IQM (and mean) per contender and P(row > column) per pair, with stratified-bootstrap percentile
    intervals; performance profiles on a grid spanning the scores."""
    runs = _oriented(runs, higher_is_better)
    rng = np.random.default_rng(seed)
    per = {c: {d: runs[d][c] for d in runs if runs[d].get(c)} for c in contenders}
    out: dict[str, Any] = {"reps": reps, "level": level, "oriented": "as measured" if higher_is_better else
                           "negated (lower is better), so higher is better for every estimate below",
                           "iqm": {}, "mean": {}, "probability_of_improvement": {}}
    for c in contenders:
        flat = np.concatenate([np.asarray(v) for v in per[c].values()]) if per[c] else np.array([])
        if not len(flat):
            continue
        draws = [np.concatenate(list(_resample(per[c], rng).values())) for _ in range(reps)]
        out["iqm"][c] = {"value": iqm(flat), "ci": _percentile([iqm(x) for x in draws], level)}
        out["mean"][c] = {"value": float(flat.mean()), "ci": _percentile([float(x.mean()) for x in draws], level)}
    for a, b in combinations(contenders, 2):
        shared = [d for d in runs if runs[d].get(a) and runs[d].get(b)]
        if not shared:
            continue
        xa, xb = {d: np.asarray(runs[d][a]) for d in shared}, {d: np.asarray(runs[d][b]) for d in shared}
        value = probability_of_improvement(xa, xb)
        draws = [probability_of_improvement(_resample(xa, rng), _resample(xb, rng)) for _ in range(reps // 4)]
        out["probability_of_improvement"][f"{a} > {b}"] = {"a": a, "b": b, "value": value,
                                                           "ci": _percentile(draws, level)}
    every = np.concatenate([np.asarray(v) for by in runs.values() for v in by.values() if v] or [np.zeros(1)])
    grid = np.linspace(float(every.min()), float(every.max()), 41)
    out["profiles"] = {"thresholds": [float(t) for t in grid],
                       "fraction_above": {c: performance_profile(per[c], grid) for c in contenders if per[c]}}
    return out


def _ranking(values: dict[str, float], higher_is_better: bool) -> dict[str, float]:
    s = pd.Series(values, dtype=float)
    return {c: float(r) for c, r in s.rank(ascending=not higher_is_better, method="min").items()}


def ranking_robustness(table: pd.DataFrame, runs: Runs, wins: dict[str, float], higher_is_better: bool
                       ) -> dict[str, Any]:
    """The contenders' ranking under five aggregations, Kendall's tau between every two, and whether the
    winner depends on the choice. ``wins``: each contender's significant wins summed over the datasets'
    own verdicts (test, then rank)."""
    contenders = list(table.columns)
    flat = {c: np.concatenate([np.asarray(runs[d][c], float) for d in table.index]) for c in contenders}
    oriented = table if higher_is_better else -table
    rank_then = oriented.rank(axis=1, ascending=False, method="average").mean()
    rankings = {
        "mean, then rank": _ranking(table.mean().to_dict(), higher_is_better),
        "median, then rank": _ranking(table.median().to_dict(), higher_is_better),
        "IQM of runs, then rank": _ranking({c: iqm(v) for c, v in flat.items()}, higher_is_better),
        "rank, then mean rank": _ranking(rank_then.to_dict(), higher_is_better=False),
        "test, then rank (significant wins)": _ranking({c: wins.get(c, 0.0) for c in contenders}, True),
    }
    names = list(rankings)
    tau: dict[str, dict[str, float | None]] = {m: {} for m in names}
    for m1 in names:
        for m2 in names:
            r1 = [rankings[m1][c] for c in contenders]
            r2 = [rankings[m2][c] for c in contenders]
            t = stats.kendalltau(r1, r2).statistic if len(contenders) > 1 else np.nan
            tau[m1][m2] = None if not np.isfinite(t) else float(t)  # nan: a ranking with every contender tied
    winners = {m: sorted(c for c, r in rk.items() if r == 1.0) for m, rk in rankings.items()}
    always = set.intersection(*(set(w) for w in winners.values()))  # first (alone or tied) under every choice
    warning = ("" if always else "the winner depends on how the scores are aggregated: " +
               "; ".join(f"{m}: {', '.join(w)}" for m, w in winners.items()))
    return {"rankings": rankings, "kendall_tau": tau, "winners": winners, "warning": warning,
            "first_under_every_choice": sorted(always),
            "references": "Maier-Hein et al. 2018; Wiesenfarth et al. 2021 (challengeR)"}


def significant_wins(comparisons: dict[str, dict[str, Any]], contenders: list[str]) -> dict[str, float]:
    """Each contender's count of 'better' cells in the datasets' own significance maps, summed."""
    wins = {c: 0.0 for c in contenders}
    for comp in comparisons.values():
        cells = (comp.get("significance_map") or {}).get("cells") or {}
        for c in contenders:
            wins[c] += sum(v == "better" for v in (cells.get(c) or {}).values())
    return wins


def relative_to(runs: Runs, reference: str) -> Runs:
    """Every run's score divided by ``reference``'s mean score on the same dataset (1 = the reference)."""
    out: Runs = {}
    for d, by in runs.items():
        ref = abs(float(np.mean(by[reference]))) if by.get(reference) else float("nan")
        if not np.isfinite(ref) or ref == 0:
            raise ValueError(f"normalise: relative needs {reference}'s mean score nonzero on dataset {d}")
        out[d] = {c: [float(v) / ref for v in vs] for c, vs in by.items()}
    return out


def suite_summaries(runs: Runs, comparisons: dict[str, dict[str, Any]], contenders: list[str], metric: str,
                    higher_is_better: bool, alpha: float = 0.05, reps: int = 2000,
                    relative: str | None = None) -> dict[str, Any]:
    """Every summary above for one suite: ``runs`` holds each dataset's run scores per contender;
    ``relative``: a contender whose mean score on each dataset the scores are divided by."""
    if relative is not None:
        runs = relative_to(runs, relative)
    table = score_table(runs, contenders)
    words = (f"relative: every run's {metric} divided by {relative}'s mean {metric} on the same dataset" if relative
             else f"no normalisation: every dataset is scored on {metric}, so scores are compared as measured")
    out: dict[str, Any] = {"metric": metric if relative is None else f"{metric} / {relative}'s",
                           "higher_is_better": higher_is_better,
                           "scores": {d: {c: float(table.loc[d, c]) for c in contenders} for d in table.index},
                           "normalisation": words}
    if len(table) < 1:
        return {**out, "note": "no dataset has scores for every contender"}
    out["ranks"] = mean_ranks(table, higher_is_better, alpha)
    complete = {d: runs[d] for d in table.index}
    out["estimates"] = interval_estimates(complete, contenders, higher_is_better, reps=reps)
    out["robustness"] = ranking_robustness(table, complete, significant_wins(comparisons, contenders),
                                           higher_is_better)
    return out
