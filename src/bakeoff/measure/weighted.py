"""Binary classification metrics for many replicates at once.

A replicate is a row of sample weights: bootstrap multiplicities, or ``1 - I`` for leave-one-out
(jackknife) values. Every metric is a function of weighted counts (true and false positives at the
threshold, the Brier sum, positives and negatives per tied-score block for AUROC and AP), so B
replicates cost a few (B, n) operations instead of B calls to a metric library. No library offers this
vectorised form; tests check every metric against torchmetrics and scikit-learn, and under bootstrap
weights against the explicitly resampled arrays.
"""

from __future__ import annotations

import numpy as np

BINARY_METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "mcc", "auroc",
                  "average_precision", "brier")


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)


def class_indices(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).astype(bool)
    return np.flatnonzero(y), np.flatnonzero(~y)


def _block_sums(W: np.ndarray, block: np.ndarray, n_blocks: int) -> np.ndarray:
    """(B, n_blocks) sums of the columns of ``W`` that fall in each block."""
    out = np.zeros((W.shape[0], n_blocks))
    if W.shape[1] == 0:
        return out
    order = np.argsort(block, kind="stable")
    sb = block[order]
    starts = np.flatnonzero(np.r_[True, sb[1:] != sb[:-1]])
    out[:, sb[starts]] = np.add.reduceat(W[:, order], starts, axis=1)
    return out


def weighted_binary_metrics(probs: np.ndarray, y: np.ndarray, W: np.ndarray, threshold: float = 0.5,
                            names: tuple[str, ...] = BINARY_METRICS) -> dict[str, np.ndarray]:
    """Each metric for each row of sample weights ``W`` (B, n): bootstrap multiplicities, or leave-one-out
    weights (1 - identity) for the jackknife."""
    p = np.asarray(probs, dtype=np.float64)
    pos = np.asarray(y).astype(bool)
    W = np.asarray(W, dtype=np.float64)
    hard = (p > threshold).astype(np.float64)
    Wp, Wn = W[:, pos], W[:, ~pos]
    stats = {"P": Wp.sum(1), "N": Wn.sum(1), "tp": Wp @ hard[pos], "fp": Wn @ hard[~pos]}
    if "brier" in names:
        stats["brier_sum"] = Wp @ (1 - p[pos]) ** 2 + Wn @ p[~pos] ** 2
    if "auroc" in names or "average_precision" in names:
        uniq, block = np.unique(p, return_inverse=True)
        stats["bp"] = _block_sums(Wp, block[pos], len(uniq))
        stats["bn"] = _block_sums(Wn, block[~pos], len(uniq))
    return _from_counts(stats, names)


def permuted_binary_metrics(probs: np.ndarray, Y: np.ndarray, threshold: float = 0.5,
                            names: tuple[str, ...] = BINARY_METRICS) -> dict[str, np.ndarray]:
    """Each metric for each row of labels ``Y`` (B, n) against the same scores: a permutation test's null
    distribution from the same sufficient statistics, with the labels rather than the weights varying."""
    p = np.asarray(probs, dtype=np.float64)
    L = np.asarray(Y).astype(np.float64)
    M = 1.0 - L
    hard = (p > threshold).astype(np.float64)
    stats = {"P": L.sum(1), "N": M.sum(1), "tp": L @ hard, "fp": M @ hard}
    if "brier" in names:
        stats["brier_sum"] = L @ (1 - p) ** 2 + M @ p ** 2
    if "auroc" in names or "average_precision" in names:
        uniq, block = np.unique(p, return_inverse=True)
        stats["bp"] = _block_sums(L, block, len(uniq))
        stats["bn"] = _block_sums(M, block, len(uniq))
    return _from_counts(stats, names)


def _from_counts(c: dict[str, np.ndarray], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Every metric from per-replicate sufficient statistics: class totals, true and false positives at
    the threshold, the Brier sum, and positives / negatives per tied-score block (ascending)."""
    P, N, tp, fp = c["P"], c["N"], c["tp"], c["fp"]
    fn, tn = P - tp, N - fp
    total = P + N
    recall, specificity, precision = _div(tp, P), _div(tn, N), _div(tp, tp + fp)
    out: dict[str, np.ndarray] = {
        "accuracy": _div(tp + tn, total),
        "balanced_accuracy": (recall + specificity) / 2,
        "precision": precision,
        "recall": recall,
        "f1": _div(2 * tp, 2 * tp + fp + fn),
        "mcc": _div(tp * tn - fp * fn, np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))),
    }
    if "brier_sum" in c:
        out["brier"] = _div(c["brier_sum"], total)
    if "bp" in c:
        bp, bn = c["bp"], c["bn"]
        if "auroc" in names:
            neg_below = np.cumsum(bn, axis=1) - bn
            out["auroc"] = _div((bp * (neg_below + 0.5 * bn)).sum(1), P * N)
        if "average_precision" in names:
            tp_at = np.cumsum(bp[:, ::-1], axis=1)[:, ::-1]  # positives scoring >= each block
            fp_at = np.cumsum(bn[:, ::-1], axis=1)[:, ::-1]
            out["average_precision"] = _div((bp * _div(tp_at, tp_at + fp_at)).sum(1), P)
    return {k: v for k, v in out.items() if k in names}


FAST_LOO = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "mcc", "auroc", "brier")


def leave_one_out_metric(probs: np.ndarray, y: np.ndarray, threshold: float, name: str) -> np.ndarray:
    """The metric with each sample left out in turn, (n,), in O(n log n) for the metrics of ``FAST_LOO``:
    leaving a sample out subtracts its own contribution from the sufficient statistics (for AUROC, its
    DeLong structural component: the negatives it outranks, or the positives that outrank it)."""
    p = np.asarray(probs, dtype=np.float64)
    pos = np.asarray(y).astype(bool)
    hard = (p > threshold).astype(np.float64)
    yf = pos.astype(np.float64)
    ones = np.ones(len(p))
    c = {"P": yf.sum() - yf, "N": (1 - yf).sum() - (1 - yf), "tp": (hard * yf).sum() - hard * yf,
         "fp": (hard * (1 - yf)).sum() - hard * (1 - yf)}
    if name == "brier":
        own = np.where(pos, (1 - p) ** 2, p ** 2)
        c["brier_sum"] = own.sum() - own
    if name == "auroc":
        neg, posv = np.sort(p[~pos]), np.sort(p[pos])
        below = np.searchsorted(neg, p, "left") + 0.5 * (np.searchsorted(neg, p, "right") - np.searchsorted(neg, p, "left"))
        above = (len(posv) - np.searchsorted(posv, p, "right")
                 + 0.5 * (np.searchsorted(posv, p, "right") - np.searchsorted(posv, p, "left")))
        total = below[pos].sum()
        num = total - np.where(pos, below, above)
        return _div(num, c["P"] * c["N"])
    return _from_counts({k: v * ones for k, v in c.items()}, (name,))[name]
