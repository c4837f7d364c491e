"""Binary and multi-class classification: probabilities, metrics (torchmetrics) and curves."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torchmetrics.functional.classification as tmf

from bakeoff.tasks.base import SampleTask


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a))


def _mcc_zero_when_undefined(mcc: torch.Tensor, hard: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """MCC is 0/0 when the predictions (or the truth) hold one class only. torchmetrics then returns a
    small non-zero substitute; we report 0, the convention of scikit-learn and of most papers."""
    if len(torch.unique(hard.long())) < 2 or len(torch.unique(t)) < 2:
        return torch.zeros(())
    return mcc


class BinaryClassification(SampleTask):
    """One logit per sample; probabilities are P(class 1); threshold-dependent metrics use ``threshold``."""

    name = "binary_classification"
    fixed_classes = 2
    thresholded = True

    @classmethod
    def verdict_note(cls, primary: str) -> str | None:
        from bakeoff.stats.weighted import BINARY_METRICS

        if primary not in BINARY_METRICS:
            return "paired per-sample comparisons are implemented for binary classification metrics only"
        return None

    @classmethod
    def compare_runs(cls, evaluations: dict, df: Any, a: str, b: str, evaluation: Any, seed: int) -> dict | None:
        """Per-sample probabilities paired by (seed, fold) and sample id."""
        from bakeoff.stats.compare import compare_pair, pair_runs

        runs = pair_runs(evaluations, df, a, b)
        return None if runs is None else compare_pair(runs, a, b, evaluation, seed=seed)
    default_loss = "bce"
    metric_names = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "mcc", "auroc",
                    "average_precision", "brier")

    @property
    def num_outputs(self) -> int:
        return 1

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits.reshape(len(logits), -1)[:, 0].float())

    def targets(self, y: torch.Tensor) -> torch.Tensor:
        return y.float()

    def metrics(self, y: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
        p, t = _t(probs).double(), _t(y).long()
        out = {
            "accuracy": tmf.binary_accuracy(p, t, threshold),
            # balanced accuracy = macro-averaged recall of the hard decisions
            "balanced_accuracy": tmf.multiclass_recall((p >= threshold).long(), t, 2, average="macro"),
            "precision": tmf.binary_precision(p, t, threshold),
            "recall": tmf.binary_recall(p, t, threshold),
            "f1": tmf.binary_f1_score(p, t, threshold),
            "mcc": _mcc_zero_when_undefined(tmf.binary_matthews_corrcoef(p, t, threshold), p >= threshold, t),
            "auroc": tmf.binary_auroc(p, t),
            "average_precision": tmf.binary_average_precision(p, t),
            # Brier score: torchmetrics has no binary Brier; it is the mean squared error of the probabilities.
            "brier": torch.mean((p - t.double()) ** 2),
        }
        return {k: float(v) for k, v in out.items()}

    def confusion_matrix(self, y: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        return tmf.binary_confusion_matrix(_t(probs).double(), _t(y).long(), threshold).numpy()

    def curves(self, y: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
        fpr, tpr, _ = tmf.binary_roc(_t(probs).double(), _t(y).long())
        return {"roc": (fpr.numpy(), tpr.numpy())}


class MulticlassClassification(SampleTask):
    """K logits per sample, softmax probabilities (N, K); macro-averaged metrics, arg-max decisions."""

    name = "multiclass_classification"

    @classmethod
    def verdict_note(cls, primary: str) -> str | None:
        from bakeoff.stats.multiclass import PAIRED_METRICS

        if primary not in PAIRED_METRICS:
            return (f"paired verdicts for {cls.name} are computed for {list(PAIRED_METRICS)}; "
                    f"{primary} is reported per run only")
        return None

    @classmethod
    def compare_runs(cls, evaluations: dict, df: Any, a: str, b: str, evaluation: Any, seed: int) -> dict | None:
        """Per-sample class probabilities paired by (seed, fold) and sample id; confusion-matrix metrics."""
        from bakeoff.stats.compare import compare_multiclass_pair, pair_runs
        from bakeoff.stats.multiclass import MulticlassRuns

        runs = pair_runs(evaluations, df, a, b)
        if runs is None:
            return None
        k = next(iter(runs.a.values())).shape[1]
        mruns = MulticlassRuns({f: v.astype(np.int64) for f, v in runs.y.items()}, runs.a, runs.b, k, ids=runs.ids)
        return compare_multiclass_pair(mruns, a, b, evaluation, seed=seed)
    default_loss = "ce"
    base_metrics = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "mcc", "qwk", "auroc",
                    "average_precision", "brier")

    def __init__(self, num_classes: int) -> None:
        super().__init__(num_classes)
        per_class = [f"{m}_class{k}" for m in ("precision", "recall", "f1") for k in range(num_classes)]
        self.metric_names = (*self.base_metrics, *per_class)

    @property
    def num_outputs(self) -> int:
        return self.num_classes

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits.float(), dim=1)

    def targets(self, y: torch.Tensor) -> torch.Tensor:
        return y.long()

    def metrics(self, y: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
        p, t, k = _t(probs).double(), _t(y).long(), self.num_classes
        onehot = torch.nn.functional.one_hot(t, k).double()
        out = {
            "accuracy": tmf.multiclass_accuracy(p, t, k, average="micro"),
            "balanced_accuracy": tmf.multiclass_recall(p, t, k, average="macro"),
            "precision": tmf.multiclass_precision(p, t, k, average="macro"),
            "recall": tmf.multiclass_recall(p, t, k, average="macro"),
            "f1": tmf.multiclass_f1_score(p, t, k, average="macro"),
            "mcc": _mcc_zero_when_undefined(tmf.multiclass_matthews_corrcoef(p, t, k), p.argmax(1), t),
            "auroc": tmf.multiclass_auroc(p, t, k, average="macro"),
            "average_precision": tmf.multiclass_average_precision(p, t, k, average="macro"),
            "brier": torch.mean(torch.sum((p - onehot) ** 2, dim=1)),
            # quadratic-weighted Cohen's kappa of the arg-max decisions (labels read as ordered)
            "qwk": tmf.multiclass_cohen_kappa(p, t, k, weights="quadratic"),
        }
        for name, fn in (("precision", tmf.multiclass_precision), ("recall", tmf.multiclass_recall),
                         ("f1", tmf.multiclass_f1_score)):
            for c, v in enumerate(fn(p, t, k, average="none")):
                out[f"{name}_class{c}"] = v
        return {k_: float(v) for k_, v in out.items()}

    def confusion_matrix(self, y: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        return tmf.multiclass_confusion_matrix(_t(probs).double(), _t(y).long(), self.num_classes).numpy()


class OrdinalClassification(MulticlassClassification):
    """Ordered labels 0 < 1 < ... < K-1 (severity grades): the multi-class model and metrics, judged by
    default on quadratic-weighted kappa, which penalises a prediction by its squared distance in grades."""

    name = "ordinal_classification"
