"""Paired comparisons of two contenders on the same test samples (and the same seeds and folds)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar

from bakeoff.stats.weighted import binary_metrics, identity_draws, stratified_draws


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, float]:
    """Exact (binomial) McNemar test on per-sample correctness; statsmodels computes the p-value."""
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    table = np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]])
    res = mcnemar(table, exact=True)
    return {"a_only_correct": int(table[0, 1]), "b_only_correct": int(table[1, 0]), "p_value": float(res.pvalue)}


def _midrank(x: np.ndarray) -> np.ndarray:
    return stats.rankdata(x, method="average")


def delong(y: np.ndarray, probs_a: np.ndarray, probs_b: np.ndarray) -> dict[str, float]:
    """DeLong's test for two correlated ROC AUCs (DeLong et al. 1988; fast midrank form of Sun & Xu 2014).

    Written here because neither scipy, statsmodels nor scikit-learn provides it.
    """
    y = np.asarray(y).astype(bool)
    m, n = int(y.sum()), int((~y).sum())
    aucs, v10, v01 = [], [], []
    for p in (np.asarray(probs_a, float), np.asarray(probs_b, float)):
        pos, neg = p[y], p[~y]
        tx, ty, tz = _midrank(pos), _midrank(neg), _midrank(np.concatenate([pos, neg]))
        aucs.append((tz[:m].sum() - m * (m + 1) / 2) / (m * n))
        v10.append((tz[:m] - tx) / n)  # structural components of the positives
        v01.append(1 - (tz[m:] - ty) / m)  # and of the negatives
    s10, s01 = np.cov(np.array(v10)), np.cov(np.array(v01))
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    diff = aucs[0] - aucs[1]
    if var <= 0:
        p_value = 1.0 if diff == 0 else 0.0
        z = 0.0 if diff == 0 else np.inf * np.sign(diff)
    else:
        z = diff / np.sqrt(var)
        p_value = float(2 * stats.norm.sf(abs(z)))
    return {"auc_a": float(aucs[0]), "auc_b": float(aucs[1]), "difference": float(diff),
            "se": float(np.sqrt(max(var, 0))), "z": float(z), "p_value": p_value}


class RunGrid:
    """The (seed, fold) runs two contenders share, from ``a`` (keyed by (seed, fold)) and ``y`` (by fold)."""

    a: dict[tuple[int, int], object]
    y: dict[int, object]

    @property
    def keys(self) -> list[tuple[int, int]]:
        """Seed-major, as baycomp expects."""
        return sorted(self.a)

    @property
    def seeds(self) -> list[int]:
        return sorted({s for s, _ in self.keys})

    @property
    def folds(self) -> list[int]:
        return sorted(self.y)


@dataclass
class PairedRuns(RunGrid):
    """Test predictions of two contenders, matched by (seed, fold) and by sample id."""

    y: dict[int, np.ndarray]  # fold -> labels of that fold's test samples
    a: dict[tuple[int, int], np.ndarray]  # (seed, fold) -> probabilities of contender A
    b: dict[tuple[int, int], np.ndarray]

    def scores(self, metric: str, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Each run's metric for A and for B, in ``keys`` order (seed-major, as baycomp expects)."""
        sa, sb = [], []
        for (s, f) in self.keys:
            d = identity_draws(self.y[f])
            sa.append(binary_metrics(self.a[s, f], *d, threshold, (metric,))[metric][0])
            sb.append(binary_metrics(self.b[s, f], *d, threshold, (metric,))[metric][0])
        return np.array(sa), np.array(sb)

    def observed(self, metric: str, threshold: float) -> float:
        """Mean over runs of metric(A) - metric(B): the effect the verdict is about."""
        sa, sb = self.scores(metric, threshold)
        return float(np.mean(sa - sb))


def paired_bootstrap(runs: PairedRuns, metric: str, threshold: float = 0.5, n_boot: int = 2000,
                     seed: int = 0, resample_seeds: bool = True) -> np.ndarray:
    """Bootstrap replicates of the mean paired difference (A - B) over runs.

    Each replicate resamples every fold's test samples (stratified by class; the same draw for both
    contenders and all seeds, so the comparison stays paired) and, with more than one seed, the seeds
    themselves, so that seed-to-seed variation widens the interval as it should.
    """
    rng = np.random.default_rng(seed)
    seeds, folds = runs.seeds, runs.folds
    out = []
    for start in range(0, n_boot, 250):
        B = min(250, n_boot - start)
        per_fold = []
        for f in folds:
            dpos, dneg = stratified_draws(runs.y[f], B, rng)
            d = np.stack([binary_metrics(runs.a[s, f], dpos, dneg, threshold, (metric,))[metric]
                          - binary_metrics(runs.b[s, f], dpos, dneg, threshold, (metric,))[metric]
                          for s in seeds], axis=1)  # (B, S)
            if resample_seeds and len(seeds) > 1:
                pick = rng.integers(0, len(seeds), size=(B, len(seeds)))
                d = np.take_along_axis(d, pick, axis=1)
            per_fold.append(d.mean(1))
        out.append(np.mean(per_fold, axis=0))
    return np.concatenate(out)


def paired_permutation(runs: PairedRuns, metric: str, threshold: float = 0.5, n_perm: int = 999,
                       seed: int = 0) -> float:
    """Two-sided p-value of the mean paired difference: each sample's two predictions are swapped at
    random (the same swap in every seed), which is exact under exchangeability of A and B."""
    rng = np.random.default_rng(seed)
    observed = runs.observed(metric, threshold)
    draws = {f: identity_draws(runs.y[f]) for f in runs.folds}
    extreme = 0
    for _ in range(n_perm):
        swaps = {f: rng.random(len(runs.y[f])) < 0.5 for f in runs.folds}
        diffs = []
        for (s, f) in runs.keys:
            sw = swaps[f]
            pa = np.where(sw, runs.b[s, f], runs.a[s, f])
            pb = np.where(sw, runs.a[s, f], runs.b[s, f])
            diffs.append(binary_metrics(pa, *draws[f], threshold, (metric,))[metric][0]
                         - binary_metrics(pb, *draws[f], threshold, (metric,))[metric][0])
        extreme += abs(np.mean(diffs)) >= abs(observed) - 1e-12
    return float((extreme + 1) / (n_perm + 1))

