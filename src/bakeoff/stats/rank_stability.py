"""How stable is the ranking: ranks recomputed over bootstrap resamples (after challengeR, Wiesenfarth et
al. 2021, Sci. Rep. 11:2369).

Each replicate resamples the test units of every fold (stratified by class for classification; the same
draw for every contender, since they share the test set) and, with several seeds, the seeds (the same
draw for every contender, since runs are paired by seed); a contender's value is the mean over the drawn
runs of its metric under the drawn unit weights (the metric's registered per-unit form, as everywhere in
bakeoff). Ranks per replicate (1 = best, ties averaged, ``scipy.stats.rankdata``) give each contender's
rank distribution; Kendall's tau-b between the full-data ranking and each replicate's (as
``scipy.stats.kendalltau``, computed for all replicates at once) says how much the ranking as a whole
moves. challengeR itself is an R package; nothing in Python computes this, hence this module."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from bakeoff.stats.bootstrap import CHUNK, bootstrap_weights, strata_of


def rank_stability(task: Any, parts: dict[str, dict[tuple[int, int], dict[str, Any]]], metric: str,
                   threshold: float = 0.5, n_boot: int = 1000, seed: int = 0,
                   resample_seeds: bool = True) -> dict[str, Any] | None:
    """``parts``: per contender, its test parts by (seed, fold), units in the same order for every
    contender. Returns the full-data ranking, each contender's rank distribution, and Kendall's tau."""
    contenders = list(parts)
    if len(contenders) < 2:
        return None
    keys = sorted(set.intersection(*(set(p) for p in parts.values())))
    if not keys:
        return None
    m = task.metric(metric)
    hib = m.higher_is_better
    tables = {c: {k: m.table(parts[c][k], task, threshold) for k in keys} for c in contenders}
    folds = sorted({f for _, f in keys})
    seeds = sorted({s for s, _ in keys})
    first = parts[contenders[0]]
    fold_part = {f: first[next(k for k in keys if k[1] == f)] for f in folds}
    n_units = {f: len(p["ids"] if "ids" in p else p["y"]) for f, p in fold_part.items()}
    strata = {f: strata_of(fold_part[f].get("y") if task.stratify_by_label else None, n_units[f]) for f in folds}

    def values(W: dict[int, np.ndarray], S: np.ndarray) -> np.ndarray:
        """(contenders, B): the mean over runs, run (s, f) weighted by seed s's multiplicity S[:, s]."""
        B = S.shape[0]
        out = np.zeros((len(contenders), B))
        total = np.zeros(B)
        for s_i, s in enumerate(seeds):
            for f in folds:
                if (s, f) not in tables[contenders[0]]:
                    continue
                total += S[:, s_i]
                for c_i, c in enumerate(contenders):
                    v = m.weighted(tables[c][(s, f)], W[f])
                    out[c_i] += S[:, s_i] * np.nan_to_num(v, nan=-np.inf if hib else np.inf)
        return out / np.where(total > 0, total, 1)

    def ranks_of(v: np.ndarray) -> np.ndarray:
        return stats.rankdata(-v if hib else v, axis=0, method="average")

    full = values({f: np.ones((1, n)) for f, n in n_units.items()}, np.ones((1, len(seeds))))[:, 0]
    full_ranks = ranks_of(full[:, None])[:, 0]
    rng = np.random.default_rng(seed)
    reps: list[np.ndarray] = []
    for start in range(0, n_boot, CHUNK):
        B = min(CHUNK, n_boot - start)
        W = {f: bootstrap_weights(strata[f], n_units[f], B, rng) for f in folds}
        if resample_seeds and len(seeds) > 1:
            S = rng.multinomial(len(seeds), np.full(len(seeds), 1 / len(seeds)), size=B).astype(float)
        else:
            S = np.ones((B, len(seeds)))
        reps.append(ranks_of(values(W, S)))
    ranks = np.concatenate(reps, axis=1)  # (contenders, n_boot)
    k = len(contenders)
    taus = kendall_tau_b(full_ranks, ranks)
    taus = taus[np.isfinite(taus)]
    # share of replicates at each rank 1..k (a tie between ranks r and r+1 counts half to each)
    counts = np.zeros((k, k))
    for r in range(1, k + 1):
        counts[:, r - 1] = np.mean(np.clip(1 - np.abs(ranks - r), 0, 1), axis=1)
    return {
        "metric": metric, "higher_is_better": hib, "n_boot": int(ranks.shape[1]),
        "resampled": "test units" + (" and seeds" if resample_seeds and len(seeds) > 1 else ""),
        "contenders": contenders,
        "value": {c: float(v) for c, v in zip(contenders, full)},
        "rank": {c: float(r) for c, r in zip(contenders, full_ranks)},
        "mean_rank": {c: float(v) for c, v in zip(contenders, ranks.mean(axis=1))},
        "rank_interval": {c: [float(np.quantile(ranks[i], 0.025)), float(np.quantile(ranks[i], 0.975))]
                          for i, c in enumerate(contenders)},
        "rank_share": {c: [float(x) for x in counts[i]] for i, c in enumerate(contenders)},
        "p_first": {c: float(np.mean(ranks[i] == ranks.min(axis=0))) for i, c in enumerate(contenders)},
        "kendall_tau": {"median": float(np.median(taus)) if len(taus) else None,
                        "q025": float(np.quantile(taus, 0.025)) if len(taus) else None,
                        "mean": float(taus.mean()) if len(taus) else None},
        "method": ("ranks over bootstrap resamples of the test units" +
                   (" (stratified by class)" if task.stratify_by_label else "") +
                   (" and of the seeds" if resample_seeds and len(seeds) > 1 else "") +
                   ", shared by all contenders; Kendall's tau against the full-data ranking (challengeR)"),
    }


def kendall_tau_b(x: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b between the ranking ``x`` (k,) and each column of ``Y`` (k, B); nan where either has
    every value tied. ``scipy.stats.kendalltau`` takes one pair per call (1000 replicates cost 0.6 s);
    for k contenders tau-b is the sum of sign products over the k(k-1)/2 pairs over the root of the
    product of the numbers of untied pairs, computed here for all replicates at once (tested against scipy)."""
    i, j = np.triu_indices(len(x), 1)
    sx = np.sign(np.asarray(x, float)[i] - np.asarray(x, float)[j])[:, None]
    sy = np.sign(Y[i] - Y[j])
    den = np.sqrt(np.abs(sx).sum(axis=0) * np.abs(sy).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (sx * sy).sum(axis=0) / np.where(den > 0, den, 1), np.nan)


def significance_map(pairs: list[dict[str, Any]], contenders: list[str]) -> dict[str, Any]:
    """Every pair's Holm-adjusted verdict as a matrix: ``cells[a][b]`` is 'better' when row a beats
    column b, 'worse', 'equivalent' or 'inconclusive'; from the paired tests' results. ``scopes[a][b]`` says
    what each verdict is about, as the pair's own verdict does: 'training recipe', or 'trained weights'
    for one training run per contender (one seed: these two models, not their architectures)."""
    cells: dict[str, dict[str, str | None]] = {a: {b: None for b in contenders} for a in contenders}
    scopes: dict[str, dict[str, str | None]] = {a: {b: None for b in contenders} for a in contenders}
    for p in pairs:
        a, b, v = p["a"], p["b"], p["verdict"]
        if a not in cells or b not in cells:
            continue
        scopes[a][b] = scopes[b][a] = p.get("scope")
        if v.startswith(f"{a} better"):
            cells[a][b], cells[b][a] = "better", "worse"
        elif v.startswith(f"{b} better"):
            cells[a][b], cells[b][a] = "worse", "better"
        elif "equivalent" in v:
            cells[a][b] = cells[b][a] = "equivalent"
        else:
            cells[a][b] = cells[b][a] = "inconclusive"
    out: dict[str, Any] = {"contenders": contenders, "cells": cells, "scopes": scopes}
    if any(p.get("scope") == "trained weights" for p in pairs):
        out["scope_note"] = ("one seed: a 'better' or 'worse' cell marked 'trained weights' in scopes is about "
                             "these two trained models, not their architectures")
    return out
