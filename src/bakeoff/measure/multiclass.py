"""Multi-class and ordinal classification metrics from confusion matrices, vectorised over replicates.

Accuracy, balanced accuracy, macro precision / recall / F1, MCC and quadratic-weighted kappa are
functions of the confusion matrix, and a bootstrap replicate's confusion matrix is its sample weights
times the per-sample one-hot (truth, prediction) cells: ``W @ E`` gives B matrices at once (leave-one-out
weights for the jackknife of ``bakeoff.stats.design``). The Brier score is a per-sample mean, weighted
the same way. Tests check every metric against the task's
torchmetrics values on the unresampled data and against scikit-learn.
"""

from __future__ import annotations

import numpy as np

CM_METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "mcc", "qwk")


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)


def cm_metrics(cm: np.ndarray, names: tuple[str, ...] = CM_METRICS) -> dict[str, np.ndarray]:
    """Metrics of (B, K, K) confusion matrices (rows truth); macro averages over the classes present in
    the truth or the predictions, as torchmetrics does."""
    cm = np.asarray(cm, dtype=float)
    K = cm.shape[-1]
    tp = np.diagonal(cm, axis1=1, axis2=2)
    truth, pred = cm.sum(2), cm.sum(1)
    total = cm.sum((1, 2))
    present = (truth + pred) > 0
    n_present = np.maximum(present.sum(1), 1)
    out: dict[str, np.ndarray] = {}
    prec, rec = _div(tp, pred), _div(tp, truth)
    f1 = _div(2 * tp, truth + pred)
    if "accuracy" in names:
        out["accuracy"] = _div(tp.sum(1), total)
    if "balanced_accuracy" in names or "recall" in names:
        out["recall"] = (rec * present).sum(1) / n_present
        out["balanced_accuracy"] = out["recall"]
    if "precision" in names:
        out["precision"] = (prec * present).sum(1) / n_present
    if "f1" in names:
        out["f1"] = (f1 * present).sum(1) / n_present
    if "mcc" in names:  # Gorodkin's multi-class MCC; 0 when undefined
        c, s = tp.sum(1), total
        num = c * s - (truth * pred).sum(1)
        den = np.sqrt((s ** 2 - (pred ** 2).sum(1)) * (s ** 2 - (truth ** 2).sum(1)))
        out["mcc"] = _div(num, den)
    if "qwk" in names:
        i, j = np.meshgrid(np.arange(K), np.arange(K), indexing="ij")
        w = (i - j) ** 2 / max((K - 1) ** 2, 1)
        expected = truth[:, :, None] * pred[:, None, :] / np.maximum(total, 1)[:, None, None]
        out["qwk"] = 1 - _div((w * cm).sum((1, 2)), (w * expected).sum((1, 2)))
    return {k: v for k, v in out.items() if k in names}


def class_cells(y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """(n, K, K) one-hot (truth, arg-max prediction) cell of each sample: a replicate's confusion matrix
    is its sample weights times these."""
    y = np.asarray(y).astype(np.int64)
    p = np.asarray(probs)
    K = p.shape[1]
    e = np.zeros((len(y), K, K))
    e[np.arange(len(y)), y, p.argmax(1)] = 1
    return e


def per_class(cm: np.ndarray, name: str, k: int) -> np.ndarray:
    """Precision, recall or F1 of class ``k`` from (B, K, K) confusion matrices (0 when undefined)."""
    cm = np.asarray(cm, dtype=float)
    tp, truth, pred = cm[:, k, k], cm[:, k, :].sum(1), cm[:, :, k].sum(1)
    den = {"precision": pred, "recall": truth, "f1": truth + pred}[name]
    return _div((2 if name == "f1" else 1) * tp, den)
