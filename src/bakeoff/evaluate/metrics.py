"""Metrics computed only from what a run saved (``predictions.npz``), so any report can be recomputed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.tasks import Task

PARTS = ("val", "test")


DENSE_KEYS = ("y", "pred", "prob", "centres", "image")  # per image; "prob": picking; "image": first val images


def load_predictions(path: str | Path) -> dict[str, dict[str, Any]]:
    """``{part: {"ids", "y", "probs"}}`` from a run's predictions.npz; for dense tasks ``{part: {"ids",
    "y", "pred", "prob", "centres"}}`` with one array per image in each list."""
    with np.load(path, allow_pickle=False) as f:
        if "dense" in f.files:
            out: dict[str, dict[str, Any]] = {}
            for part in PARTS:
                if f"{part}_ids" not in f.files:
                    continue
                n = len(f[f"{part}_ids"])
                d: dict[str, Any] = {"ids": f[f"{part}_ids"], "class_names": [str(c) for c in f["class_names"]],
                                     "spacing": tuple(float(v) for v in f["spacing"])}
                for k in DENSE_KEYS:
                    d[k] = [f[f"{part}_{k}_{j}"] if f"{part}_{k}_{j}" in f.files else None for j in range(n)]
                out[part] = d
            return out
        return {part: {k: f[f"{part}_{k}"] for k in ("ids", "y", "probs")} for part in PARTS
                if f"{part}_y" in f.files}


def predictions_arrays(preds: dict[str, dict[str, Any]]) -> dict[str, np.ndarray]:
    if "pred" not in next(iter(preds.values())):
        return {f"{part}_{k}": v for part, d in preds.items() for k, v in d.items()}
    first = next(iter(preds.values()))
    out = {"dense": np.array(1), "class_names": np.asarray(first["class_names"]),
           "spacing": np.asarray(first["spacing"], dtype=np.float64)}
    for part, d in preds.items():
        out[f"{part}_ids"] = np.asarray(d["ids"])
        for k in DENSE_KEYS:
            for j, a in enumerate(d.get(k) or []):
                if a is not None:
                    out[f"{part}_{k}_{j}"] = np.asarray(a)
    return out


def evaluate_predictions(task: Task, preds: dict[str, dict[str, Any]], threshold: float,
                         keep_tables: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per part: every metric, the confusion matrix (rows: truth, columns: prediction; pixels for dense
    tasks) and the threshold. For dense tasks ``keep_tables[part]`` receives the per-image tables."""
    out: dict[str, Any] = {"threshold": threshold}
    for part, d in preds.items():
        if task.dense and keep_tables is not None:
            out[part], cm = task.evaluate_part(d, threshold, keep_tables=keep_tables.setdefault(part, {}))
        else:
            out[part], cm = task.evaluate_part(d, threshold)
        out[f"{part}_confusion"] = cm.tolist()
        rows = np.asarray(cm, dtype=float).sum(1, keepdims=True)
        out[f"{part}_confusion_normalized"] = (np.asarray(cm) / np.where(rows > 0, rows, 1)).tolist()  # per true class
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
