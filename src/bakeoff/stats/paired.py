"""Paired comparisons of two contenders on the same test samples (and the same seeds and folds)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, float]:
    """Exact (binomial) McNemar test on per-sample correctness; statsmodels computes the p-value."""
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    table = np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]])
    res = mcnemar(table, exact=True)
    return {"a_only_correct": int(table[0, 1]), "b_only_correct": int(table[1, 0]), "p_value": float(res.pvalue)}


def _midrank(x: np.ndarray) -> np.ndarray:
    return stats.rankdata(x, method="average")


def delong(y: np.ndarray, probs_a: np.ndarray, probs_b: np.ndarray, n_perm: int = 1999) -> dict[str, float]:
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
    diff = aucs[0] - aucs[1]
    var = np.nan
    if m >= 2 and n >= 2:
        s10, s01 = np.cov(np.array(v10)), np.cov(np.array(v01))
        var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    out = {"auc_a": float(aucs[0]), "auc_b": float(aucs[1]), "difference": float(diff)}
    if np.isfinite(var) and var > 0:
        z = diff / np.sqrt(var)
        return {**out, "se": float(np.sqrt(var)), "z": float(z), "p_value": float(2 * stats.norm.sf(abs(z)))}
    # DeLong's variance is zero or undefined (one positive or negative, or no spread): a paired
    # permutation test of the AUROC difference answers instead, never p = 0 or NaN
    return {**out, "se": None, "z": None, "p_value": auroc_permutation(y, probs_a, probs_b, n_perm),
            "note": "DeLong variance zero or undefined; p from a paired permutation test"}


def auroc_permutation(y: np.ndarray, probs_a: np.ndarray, probs_b: np.ndarray, n_perm: int = 1999,
                      seed: int = 0) -> float:
    """Two-sided p of AUROC(A) - AUROC(B) with each sample's two scores swapped at random; exact over all
    2^n swap patterns when there are at most ``n_perm`` of them."""
    y = np.asarray(y).astype(bool)
    pa, pb = np.asarray(probs_a, float), np.asarray(probs_b, float)
    n = len(y)
    exact = 2 ** n <= n_perm
    swaps = (((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(bool) if exact else
             np.random.default_rng(seed).random((n_perm, n)) < 0.5)

    def auc(p: np.ndarray) -> np.ndarray:  # (B, n) scores -> (B,) AUROC with ties counted half
        pos, neg = p[:, y][:, :, None], p[:, ~y][:, None, :]
        return ((pos > neg) + 0.5 * (pos == neg)).mean((1, 2))

    observed = float(auc(pa[None])[0] - auc(pb[None])[0])
    if observed == 0 or y.all() or not y.any():
        return 1.0
    null = auc(np.where(swaps, pb, pa)) - auc(np.where(swaps, pa, pb))
    extreme = int(np.sum(np.abs(null) >= abs(observed) - 1e-12))
    return float(extreme / len(null)) if exact else float((extreme + 1) / (n_perm + 1))


@dataclass
class PairedRuns:
    """Both contenders' per-unit tables of one metric (``bakeoff.tasks.metric``) for the (seed, fold)
    runs they share: the same test units (samples, or images) in the same order. ``parts_a``/``parts_b``
    keep the saved predictions for the per-run tests a task reports beside the verdict."""

    metric: Any  # bakeoff.tasks.metric.Metric
    a: dict[tuple[int, int], Any]
    b: dict[tuple[int, int], Any]
    units: dict[int, int]  # fold -> test units
    ids: dict[int, np.ndarray] | None = None  # fold -> test unit ids (folds with equal ids share a test set)
    parts_a: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    parts_b: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)

    @property
    def keys(self) -> list[tuple[int, int]]:
        """Seed-major, as baycomp expects."""
        return sorted(self.a)

    @property
    def seeds(self) -> list[int]:
        return sorted({s for s, _ in self.keys})

    @property
    def folds(self) -> list[int]:
        return sorted(self.units)

    def values(self, key: tuple[int, int], which: str, W: np.ndarray) -> np.ndarray:
        """The metric of one contender's run under unit weights ``W`` (B, n)."""
        return self.metric.weighted((self.a if which == "a" else self.b)[key], W)


def paired_runs(task: Any, metric: str, parts_a: dict[tuple[int, int], dict[str, Any]],
                parts_b: dict[tuple[int, int], dict[str, Any]], threshold: float = 0.5) -> PairedRuns:
    """Pair two contenders' test parts (already in the same unit order) on ``metric`` of ``task``."""
    m = task.metric(metric)
    keys = sorted(set(parts_a) & set(parts_b))
    ids = {k[1]: np.asarray(parts_a[k]["ids"]) for k in keys if "ids" in parts_a[k]}
    units = {k[1]: len(parts_a[k]["ids"] if "ids" in parts_a[k] else parts_a[k]["y"]) for k in keys}
    return PairedRuns(m, {k: m.table(parts_a[k], task, threshold) for k in keys},
                      {k: m.table(parts_b[k], task, threshold) for k in keys}, units, ids or None,
                      {k: parts_a[k] for k in keys}, {k: parts_b[k] for k in keys})


# -- the tests of one (seed, fold) run pair reported beside the verdict (not part of it): a task names
# the ones that fit its predictions (``Task.per_run_tests``); they are computed here
def _mcnemar_threshold(runs: Any, key: tuple[int, int], ev: Any) -> dict[str, Any]:
    """McNemar on correctness at the decision threshold (one probability per sample)."""
    pa, pb = runs.parts_a[key], runs.parts_b[key]
    y, thr = np.asarray(pa["y"]).astype(bool), ev.threshold
    return {"mcnemar_accuracy": mcnemar_exact((pa["probs"] > thr) == y, (pb["probs"] > thr) == y)}


def _delong(runs: Any, key: tuple[int, int], ev: Any) -> dict[str, Any]:
    """DeLong's test of the two AUROCs on the same samples."""
    pa, pb = runs.parts_a[key], runs.parts_b[key]
    return {"delong_auroc": delong(np.asarray(pa["y"]).astype(bool), pa["probs"], pb["probs"], ev.n_permutations)}


def _mcnemar_argmax(runs: Any, key: tuple[int, int], ev: Any) -> dict[str, Any]:
    """McNemar on the correctness of the arg-max decisions (K probabilities per sample)."""
    pa, pb = runs.parts_a[key], runs.parts_b[key]
    y = np.asarray(pa["y"])
    return {"mcnemar_accuracy": mcnemar_exact(pa["probs"].argmax(1) == y, pb["probs"].argmax(1) == y)}


def _wilcoxon_images(runs: Any, key: tuple[int, int], ev: Any) -> dict[str, Any]:
    """Wilcoxon signed-rank test of the images' own scores (the primary metric on each image alone)."""
    eye = np.eye(runs.units[key[1]])
    ia, ib = runs.values(key, "a", eye), runs.values(key, "b", eye)
    ok = ~(np.isnan(ia) | np.isnan(ib))
    entry: dict[str, Any] = {"images": int(ok.sum())}
    if ok.sum() >= 6 and np.any(ia[ok] != ib[ok]):
        w = stats.wilcoxon(ia[ok], ib[ok])
        entry["wilcoxon_images"] = {"statistic": float(w.statistic), "p_value": float(w.pvalue)}
    else:
        entry["wilcoxon_images"] = {"note": "needs >= 6 images with defined, not all equal, scores"}
    return entry


PER_RUN_TESTS = {"mcnemar_threshold": _mcnemar_threshold, "delong": _delong, "mcnemar_argmax": _mcnemar_argmax,
                 "wilcoxon_images": _wilcoxon_images}


def run_pair_tests(names: tuple[str, ...], runs: Any, key: tuple[int, int], ev: Any) -> dict[str, Any]:
    """The named per-run tests (``PER_RUN_TESTS``) of run pair ``key``, merged."""
    out: dict[str, Any] = {}
    for name in names:
        out.update(PER_RUN_TESTS[name](runs, key, ev))
    return out
