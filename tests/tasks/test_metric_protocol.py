"""The one metric protocol: every built-in classification metric equals its reference (torchmetrics, to
1e-12; scikit-learn in test_classification.py), and under bootstrap weights equals the metric of the
explicitly resampled predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchmetrics.functional.classification as tmf

from bakeoff.stats.bootstrap import bootstrap_replicates, bootstrap_weights, strata_of
from bakeoff.tasks import get_task


def _binary(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.round(np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1), 2)  # rounded: tied scores
    return y, p


def _multi(n=300, K=4, seed=1, never_predicted=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, n)
    logits = rng.normal(size=(n, K)) + 1.2 * np.eye(K)[y]
    if never_predicted:
        logits[:, K - 1] -= 100
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, p


def _torchmetrics_binary(y, p, thr):
    P, T = torch.as_tensor(p).double(), torch.as_tensor(y).long()
    return {"accuracy": tmf.binary_accuracy(P, T, thr), "precision": tmf.binary_precision(P, T, thr),
            "recall": tmf.binary_recall(P, T, thr), "f1": tmf.binary_f1_score(P, T, thr),
            "mcc": tmf.binary_matthews_corrcoef(P, T, thr),
            "balanced_accuracy": tmf.multiclass_recall((P > thr).long(), T, 2, average="macro"),
            "auroc": tmf.binary_auroc(P, T), "average_precision": tmf.binary_average_precision(P, T),
            "brier": torch.mean((P - T.double()) ** 2)}


def _torchmetrics_multiclass(y, p, K):
    P, T = torch.as_tensor(p).double(), torch.as_tensor(y).long()
    out = {"accuracy": tmf.multiclass_accuracy(P, T, K, average="micro"),
           "balanced_accuracy": tmf.multiclass_recall(P, T, K, average="macro"),
           "precision": tmf.multiclass_precision(P, T, K, average="macro"),
           "recall": tmf.multiclass_recall(P, T, K, average="macro"),
           "f1": tmf.multiclass_f1_score(P, T, K, average="macro"),
           "mcc": tmf.multiclass_matthews_corrcoef(P, T, K),
           "qwk": tmf.multiclass_cohen_kappa(P, T, K, weights="quadratic"),
           "auroc": tmf.multiclass_auroc(P, T, K, average="macro"),
           "average_precision": tmf.multiclass_average_precision(P, T, K, average="macro"),
           "brier": torch.mean(torch.sum((P - torch.nn.functional.one_hot(T, K).double()) ** 2, 1))}
    for name, fn in (("precision", tmf.multiclass_precision), ("recall", tmf.multiclass_recall),
                     ("f1", tmf.multiclass_f1_score)):
        for c, v in enumerate(fn(P, T, K, average="none")):
            out[f"{name}_class{c}"] = v
    return out


def _tol(v: torch.Tensor) -> float:
    """torchmetrics returns some metrics in float32 whatever the input; those agree to its precision."""
    return 1e-12 if v.dtype == torch.float64 else 1e-7


@pytest.mark.parametrize("thr", [0.5, 0.35])
def test_binary_metrics_equal_torchmetrics(thr):
    y, p = _binary()
    got = get_task("binary_classification").metrics(y, p, thr)
    ref = _torchmetrics_binary(y, p, thr)
    assert set(ref) <= set(got)
    for k, v in ref.items():
        assert got[k] == pytest.approx(float(v), abs=_tol(v)), k


@pytest.mark.parametrize("never_predicted", [False, True])
def test_multiclass_metrics_equal_torchmetrics(never_predicted):
    K = 4
    y, p = _multi(K=K, never_predicted=never_predicted)
    got = get_task("ordinal_classification", K).metrics(y, p)
    ref = _torchmetrics_multiclass(y, p, K)
    assert set(got) == set(ref)
    for k, v in ref.items():
        assert got[k] == pytest.approx(float(v), abs=_tol(v)), k


@pytest.mark.parametrize("task, K", [("binary_classification", 2), ("multiclass_classification", 3)])
def test_bootstrap_values_equal_the_metrics_of_explicit_resamples(task, K):
    """One bootstrap for every metric: replicate b's value is the metric of the predictions resampled
    with the same draws (stratified by class)."""
    t = get_task(task, K)
    y, p = _binary(80, seed=3) if K == 2 else _multi(90, K, seed=4)
    part = {"ids": np.arange(len(y)), "y": y, "probs": p}
    names = tuple(m for m in t.metric_names if t.metric(m).resamplable)
    reps = bootstrap_replicates(t, part, names, 0.5, n_boot=6, seed=11)
    W = bootstrap_weights(strata_of(y, len(y)), len(y), 6, np.random.default_rng(11))
    assert (W.sum(1) == len(y)).all()
    for b in range(6):
        idx = np.repeat(np.arange(len(y)), W[b].astype(int))
        assert np.bincount(y[idx], minlength=K).tolist() == np.bincount(y, minlength=K).tolist()  # stratified
        direct = t.metrics(y[idx], p[idx], 0.5)
        for m in names:
            assert reps[m][b] == pytest.approx(direct[m], abs=1e-12), (m, b)
