"""Paired runs written the way a test reads them (labels and probabilities, or per-image (num, den)
tables), judged through the study's own path: ``paired_runs`` on the primary metric, then
``compare_pair`` with the task's per-run tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bakeoff.stats.compare import compare_pair
from bakeoff.stats.paired import PairedRuns, paired_runs, run_pair_tests
from bakeoff.tasks import get_task


@dataclass
class Sample:
    y: dict[int, np.ndarray]  # fold -> labels
    a: dict[tuple[int, int], np.ndarray]  # (seed, fold) -> probabilities of A
    b: dict[tuple[int, int], np.ndarray]
    ids: dict[int, np.ndarray] | None = None
    num_classes: int | None = None  # None: binary


@dataclass
class Dense:
    a: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]  # (seed, fold) -> per-image (num, den)
    b: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]
    n_images: dict[int, int]
    ids: dict[int, np.ndarray] | None = None


def as_paired(runs: Sample | Dense, metric: str, threshold: float = 0.5) -> tuple[Any, Any]:
    if isinstance(runs, Dense):
        task = get_task("semantic_segmentation", 3)

        def part(k: tuple[int, int], t: Any) -> dict[str, Any]:
            p: dict[str, Any] = {"tables": {metric: t}, "y": [None] * runs.n_images[k[1]]}
            if runs.ids is not None:
                p["ids"] = runs.ids[k[1]]
            return p
    else:
        task = get_task("binary_classification") if runs.num_classes is None else \
            get_task("multiclass_classification", runs.num_classes)

        def part(k: tuple[int, int], t: Any) -> dict[str, Any]:
            p = {"y": runs.y[k[1]], "probs": t}
            if runs.ids is not None:
                p["ids"] = runs.ids[k[1]]
            return p
    pa = {k: part(k, v) for k, v in runs.a.items()}
    pb = {k: part(k, v) for k, v in runs.b.items()}
    return task, paired_runs(task, metric, pa, pb, threshold)


def compare(runs: Sample | Dense | PairedRuns, a: str, b: str, ev: Any, **kw: Any) -> dict[str, Any]:
    if isinstance(runs, PairedRuns):  # already paired (the calibration's generators)
        name = runs.metric.tasks[0]
        task = get_task(name, None if name == "binary_classification" else 3)
        paired = runs
    else:
        task, paired = as_paired(runs, ev.primary, ev.threshold)
    return compare_pair(paired, a, b, ev, unit=task.unit,
                        per_run_tests=lambda key: run_pair_tests(task.per_run_tests, paired, key, ev), **kw)
