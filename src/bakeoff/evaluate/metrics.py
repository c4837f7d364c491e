"""Metrics computed only from what a run saved (``predictions.npz``), so any report can be recomputed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.tasks import Task

PARTS = ("val", "test")


def load_predictions(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """``{part: {"ids", "y", "probs"}}`` from a run's predictions.npz."""
    with np.load(path, allow_pickle=False) as f:
        return {part: {k: f[f"{part}_{k}"] for k in ("ids", "y", "probs")} for part in PARTS
                if f"{part}_y" in f.files}


def predictions_arrays(preds: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {f"{part}_{k}": v for part, d in preds.items() for k, v in d.items()}


def evaluate_predictions(task: Task, preds: dict[str, dict[str, np.ndarray]], threshold: float) -> dict[str, Any]:
    """Per part: every metric, the confusion matrix (rows: truth, columns: prediction) and the threshold."""
    out: dict[str, Any] = {"threshold": threshold}
    for part, d in preds.items():
        out[part] = task.metrics(d["y"], d["probs"], threshold)
        out[f"{part}_confusion"] = task.confusion_matrix(d["y"], d["probs"], threshold).tolist()
        out[f"{part}_n"] = int(len(d["y"]))
    return out


def choose_threshold(y: np.ndarray, probs: np.ndarray, rule: str) -> float:
    """The validation threshold that maximises Youden's J (TPR - FPR) or F1 (scikit-learn's curves)."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    if rule == "youden":
        fpr, tpr, thr = roc_curve(y, probs)
        keep = np.isfinite(thr)
        return float(thr[keep][np.argmax((tpr - fpr)[keep])])
    if rule == "f1":
        prec, rec, thr = precision_recall_curve(y, probs)
        f1 = np.where(prec[:-1] + rec[:-1] > 0, 2 * prec[:-1] * rec[:-1] / np.maximum(prec[:-1] + rec[:-1], 1e-12), 0)
        return float(thr[np.argmax(f1)])
    raise ValueError(f"unknown threshold rule {rule!r}")
