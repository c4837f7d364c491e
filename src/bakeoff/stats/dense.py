"""Paired comparisons for dense tasks: images are the resampling unit.

Every dense metric is a ratio of sums over images (see ``bakeoff.tasks.segmentation.aggregate``), so
weighting images (leave one out for the jackknife of ``bakeoff.stats.design``) is a matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bakeoff.stats.paired import RunGrid
from bakeoff.tasks.segmentation import aggregate


@dataclass
class DenseRuns(RunGrid):
    """Per (seed, fold): the (num, den) tables of A and B on the same test images, in the same order."""

    a: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]
    b: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]
    n_images: dict[int, int]  # fold -> test images
    ids: dict[int, np.ndarray] | None = None  # fold -> test image ids

    @property
    def y(self) -> dict[int, int]:  # what RunGrid reads the folds from
        return self.n_images

    def image_scores(self, key: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Each image's own score (the metric on that image alone; NaN where undefined)."""
        eye = np.eye(self.n_images[key[1]])
        return aggregate(*self.a[key], eye), aggregate(*self.b[key], eye)
