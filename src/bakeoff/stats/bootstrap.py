"""Bootstrap confidence intervals of a run's metrics on its own test units, for every task: replicates
are rows of unit multiplicities (stratified by class for classification, so each class keeps its count),
and each metric is its registered ``compute`` under those weights (``bakeoff.tasks.metric``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from bakeoff.measure.weighted import class_indices

CHUNK = 250  # replicates per block: bounds memory at CHUNK x n


def strata_of(y: np.ndarray | None, n: int) -> list[np.ndarray]:
    """The index groups resampled separately: positives then negatives for binary labels (the order the
    draws have always used), each class in turn for more classes, all units as one group without labels."""
    if y is None:
        return [np.arange(n)]
    y = np.asarray(y)
    if y.dtype == bool or set(np.unique(y).tolist()) <= {0, 1}:
        return list(class_indices(y))
    return [np.flatnonzero(y == c) for c in np.unique(y)]


def bootstrap_weights(strata: list[np.ndarray], n: int, B: int, rng: np.random.Generator) -> np.ndarray:
    """(B, n) multiplicities: each group drawn with replacement to its own size."""
    offsets = (np.arange(B, dtype=np.int64) * n)[:, None]
    W = np.zeros(B * n)
    for g in strata:
        if len(g):
            draws = g[rng.integers(0, len(g), size=(B, len(g)), dtype=np.int32)]
            W += np.bincount((draws + offsets).ravel(), minlength=B * n)
    return W.reshape(B, n)


def bootstrap_replicates(task: Any, part: dict[str, Any], names: tuple[str, ...], threshold: float = 0.5,
                         n_boot: int = 2000, seed: int = 0) -> dict[str, np.ndarray]:
    """``n_boot`` bootstrap values of each metric ``names`` of ``task`` on one part's predictions."""
    from bakeoff.tasks.metric import tables_for

    metrics = {m: task.metric(m) for m in names}
    tables = tables_for(metrics, part, task, threshold)
    n = len(part["ids"] if "ids" in part else part["y"])
    strata = strata_of(part.get("y") if task.stratify_by_label else None, n)
    rng = np.random.default_rng(seed)
    out: dict[str, list[np.ndarray]] = {m: [] for m in names}
    for start in range(0, n_boot, CHUNK):
        W = bootstrap_weights(strata, n, min(CHUNK, n_boot - start), rng)
        for m, metric in metrics.items():
            out[m].append(metric.weighted(tables[m], W))
    return {m: np.concatenate(v) for m, v in out.items()}


def bootstrap_cis(task: Any, part: dict[str, Any], threshold: float = 0.5, n_boot: int = 2000,
                  level: float = 0.95, seed: int = 0, names: tuple[str, ...] | None = None) -> dict[str, dict[str, float]]:
    """Percentile intervals of every resamplable metric: ``{metric: {"value", "ci_low", "ci_high"}}``."""
    names = names or tuple(m for m in task.metric_names if task.metric(m).resamplable)
    reps = bootstrap_replicates(task, part, names, threshold, n_boot, seed)
    a = (1 - level) / 2
    return {m: {"value": task.metric(m).value(part, task, threshold), "ci_low": float(np.nanquantile(r, a)),
                "ci_high": float(np.nanquantile(r, 1 - a))} for m, r in reps.items()}
