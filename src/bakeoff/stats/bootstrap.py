"""Bootstrap confidence intervals of a run's metrics on its test samples (stratified by class)."""

from __future__ import annotations

import numpy as np

from bakeoff.stats.weighted import BINARY_METRICS, binary_metrics, identity_draws, stratified_draws

CHUNK = 250  # replicates per block: bounds memory at CHUNK x n integers


def bootstrap_replicates(y: np.ndarray, probs: np.ndarray, threshold: float = 0.5, n_boot: int = 2000,
                         seed: int = 0, names: tuple[str, ...] = BINARY_METRICS) -> dict[str, np.ndarray]:
    """``n_boot`` stratified bootstrap values of each binary metric."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for start in range(0, n_boot, CHUNK):
        dpos, dneg = stratified_draws(y, min(CHUNK, n_boot - start), rng)
        for k, v in binary_metrics(probs, dpos, dneg, threshold, names).items():
            parts[k].append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


def bootstrap_cis(y: np.ndarray, probs: np.ndarray, threshold: float = 0.5, n_boot: int = 2000,
                  level: float = 0.95, seed: int = 0) -> dict[str, dict[str, float]]:
    """Percentile intervals: ``{metric: {"value", "ci_low", "ci_high"}}``."""
    point = {k: float(v[0]) for k, v in binary_metrics(probs, *identity_draws(y), threshold).items()}
    reps = bootstrap_replicates(y, probs, threshold, n_boot, seed)
    a = (1 - level) / 2
    return {k: {"value": point[k], "ci_low": float(np.quantile(r, a)), "ci_high": float(np.quantile(r, 1 - a))}
            for k, r in reps.items()}
