"""Paired comparisons for dense tasks: images are the resampling unit.

Every dense metric is a ratio of sums over images (see ``bakeoff.tasks.segmentation.aggregate``), so a
bootstrap replicate is a vector of image multiplicities and a permutation swaps the two contenders'
predictions of whole images; both are computed for many replicates at once with matrix products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bakeoff.stats.paired import RunGrid
from bakeoff.tasks.segmentation import aggregate, ratio_mean


@dataclass
class DenseRuns(RunGrid):
    """Per (seed, fold): the (num, den) tables of A and B on the same test images, in the same order."""

    a: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]
    b: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]
    n_images: dict[int, int]  # fold -> test images

    @property
    def y(self) -> dict[int, int]:  # what RunGrid reads the folds from
        return self.n_images

    def scores(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([aggregate(*self.a[k])[0] for k in self.keys]),
                np.array([aggregate(*self.b[k])[0] for k in self.keys]))

    def observed(self) -> float:
        sa, sb = self.scores()
        return float(np.nanmean(sa - sb))

    def image_scores(self, key: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Each image's own score (the metric on that image alone; NaN where undefined)."""
        eye = np.eye(self.n_images[key[1]])
        return aggregate(*self.a[key], eye), aggregate(*self.b[key], eye)


def dense_bootstrap(runs: DenseRuns, n_boot: int, seed: int = 0) -> np.ndarray:
    """Replicates of the mean paired difference: test images resampled (same draw for both contenders and
    every seed) and, with several seeds, the seeds too."""
    rng = np.random.default_rng(seed)
    seeds = runs.seeds
    per_fold = []
    for f in runs.folds:
        n = runs.n_images[f]
        draws = rng.integers(0, n, size=(n_boot, n))
        W = np.zeros((n_boot, n))
        np.add.at(W, (np.arange(n_boot)[:, None], draws), 1)
        d = np.stack([aggregate(*runs.a[s, f], W) - aggregate(*runs.b[s, f], W) for s in seeds], axis=1)
        if len(seeds) > 1:
            pick = rng.integers(0, len(seeds), size=(n_boot, len(seeds)))
            d = np.take_along_axis(d, pick, axis=1)
        per_fold.append(np.nanmean(d, axis=1))
    return np.nanmean(per_fold, axis=0)


def dense_permutation(runs: DenseRuns, n_perm: int, seed: int = 0) -> float:
    """Two-sided p-value: each test image's two predictions swapped (same swap in every seed). With few
    test images (2^n swap patterns <= ``n_perm``) every pattern is enumerated and the p-value is exact;
    otherwise ``n_perm`` random patterns give the usual (count + 1) / (n_perm + 1)."""
    rng = np.random.default_rng(seed)
    observed = runs.observed()
    total = sum(runs.n_images[f] for f in runs.folds)
    exact = 2 ** total <= n_perm
    if exact:
        bits = ((np.arange(2 ** total)[:, None] >> np.arange(total)) & 1).astype(float)
        offsets = np.cumsum([0] + [runs.n_images[f] for f in runs.folds])
        swaps = {f: bits[:, offsets[i]:offsets[i + 1]] for i, f in enumerate(runs.folds)}
    else:
        swaps = {f: (rng.random((n_perm, runs.n_images[f])) < 0.5).astype(float) for f in runs.folds}
    diffs = []
    for (s, f) in runs.keys:
        S = swaps[f]
        (na, da), (nb, db) = runs.a[s, f], runs.b[s, f]
        keep = 1 - S
        num_a, den_a = keep @ na + S @ nb, keep @ da + S @ db
        num_b, den_b = keep @ nb + S @ na, keep @ db + S @ da
        diffs.append(ratio_mean(num_a, den_a) - ratio_mean(num_b, den_b))
    null = np.nanmean(np.stack(diffs, axis=1), axis=1)
    extreme = int(np.sum(np.abs(null) >= abs(observed) - 1e-12))
    if exact:  # the identity pattern is among those enumerated
        return float(extreme / len(null))
    return float((extreme + 1) / (n_perm + 1))
