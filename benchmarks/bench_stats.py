"""Speed of the vectorised stratified bootstrap: 10,000 test samples x 2,000 resamples.

Compares bakeoff's replicate machinery with the obvious loop (scikit-learn on each resample, measured on
a subset of resamples and scaled). Run: python benchmarks/bench_stats.py
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.metrics import roc_auc_score

from bakeoff.measure.weighted import BINARY_METRICS
from bakeoff.stats.bootstrap import bootstrap_replicates
from bakeoff.tasks import get_task


def main(n: int = 10_000, n_boot: int = 2_000) -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(n) < 0.3).astype(int)
    p = np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)
    task, part = get_task("binary_classification"), {"y": y, "probs": p}
    bootstrap_replicates(task, part, BINARY_METRICS, n_boot=64)  # warm-up
    print(f"{n:,} samples x {n_boot:,} stratified resamples")
    for names in (("accuracy",), ("auroc",), ("average_precision",), BINARY_METRICS):
        t0 = time.perf_counter()
        bootstrap_replicates(task, part, names, n_boot=n_boot)
        label = "all nine metrics" if len(names) > 1 else names[0]
        print(f"  bakeoff, {label:18s} {time.perf_counter() - t0:6.2f} s")
    k = 100
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    t0 = time.perf_counter()
    for _ in range(k):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        roc_auc_score(y[idx], p[idx])
    loop = (time.perf_counter() - t0) * n_boot / k
    print(f"  loop of sklearn roc_auc_score, scaled from {k} resamples: {loop:6.2f} s")


if __name__ == "__main__":
    main()
