"""Binary and multi-class classification: probabilities, per-run tests, confusion matrices and curves
(torchmetrics); the metrics themselves come from the metric registry (``bakeoff.tasks.metric``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bakeoff.tasks.base import SampleTask, register_task

if TYPE_CHECKING:
    import torch


def _t(a: np.ndarray) -> torch.Tensor:
    import torch  # (task modules load without torch: bakeoff.tasks.base)

    return torch.as_tensor(np.asarray(a))


def _tmf() -> Any:
    import torchmetrics.functional.classification as tmf

    return tmf


PER_CLASS = ("precision", "recall", "f1")


@register_task
class BinaryClassification(SampleTask):
    """One logit per sample; probabilities are P(class 1); threshold-dependent metrics use ``threshold``."""

    name = "binary_classification"
    default_primary = "auroc"
    fixed_classes = 2
    thresholded = True
    per_run_tests = ("mcnemar_threshold", "delong")  # stats.paired: McNemar at the threshold, DeLong
    default_loss = "bce"
    loss_kind = "binary"

    @property
    def num_outputs(self) -> int:
        return 1

    output_text = "one logit per sample: P(class 1) = sigmoid(logit)"

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.reshape(len(logits), -1)[:, 0].float().sigmoid()

    def targets(self, y: torch.Tensor) -> torch.Tensor:
        return y.float()

    def confusion_matrix(self, y: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        return _tmf().binary_confusion_matrix(_t(probs).double(), _t(y).long(), threshold).numpy()

    def permuted_metric(self, metric: str, probs: np.ndarray, labels: np.ndarray, threshold: float = 0.5
                        ) -> np.ndarray | None:
        """The built-in binary metrics for many label rows in a few (B, n) operations (199 permutations:
        at 400 validation samples 0.05 s a run one row at a time, 0.008 s so); a metric registered by
        the user is scored row by row."""
        from bakeoff.measure.weighted import BINARY_METRICS, permuted_binary_metrics
        from bakeoff.tasks.metric import binary_table

        m = self.metric(metric)
        if metric not in BINARY_METRICS or m.update is not binary_table or m.source is not None:
            return None
        return permuted_binary_metrics(probs, labels, threshold, (metric,))[metric]

    def curves(self, y: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
        # scikit-learn's curves (every threshold kept): the same points as torchmetrics' binary_roc and
        # binary_precision_recall_curve, without importing torch into a report of saved predictions
        from sklearn.metrics import precision_recall_curve, roc_curve

        y, probs = np.asarray(y).astype(int), np.asarray(probs, dtype=np.float64)
        fpr, tpr, _ = roc_curve(y, probs, drop_intermediate=False)
        prec, rec, _ = precision_recall_curve(y, probs, drop_intermediate=False)
        return {"roc": (fpr, tpr), "pr": (rec, prec)}


@register_task
class MulticlassClassification(SampleTask):
    """K logits per sample, softmax probabilities (N, K); macro-averaged metrics, arg-max decisions."""

    name = "multiclass_classification"
    default_primary = "auroc"
    per_run_tests = ("mcnemar_argmax",)  # stats.paired: McNemar on the arg-max decisions
    default_loss = "ce"
    words = "multi-class classification"

    def per_class_names(self) -> tuple[str, ...]:
        return tuple(f"{m}_class{k}" for m in PER_CLASS for k in range(self.num_classes))

    @classmethod
    def family_of(cls, name: str) -> str | None:
        family, sep, k = name.rpartition("_class")
        return family if sep and family in PER_CLASS and k.isdigit() else None

    def per_class_metric(self, name: str) -> Any:
        """``f1_class2``: the F1 of class 2 against the rest, from the same confusion cells."""
        from bakeoff.measure.multiclass import per_class
        from bakeoff.tasks.metric import Metric, builtin_bounds, cells_table

        if name not in self.per_class_names():
            return None
        family, k = name.rsplit("_class", 1)
        K = self.num_classes

        def compute(cells: np.ndarray, W: np.ndarray) -> np.ndarray:
            return per_class((W @ cells.reshape(len(cells), -1)).reshape(-1, K, K), family, int(k))

        return Metric(name, True, False, f"{family} of class {k}",
                      cells_table, compute, tasks=(self.name,), bounds=builtin_bounds(family))

    @property
    def num_outputs(self) -> int:
        return self.num_classes

    @property
    def output_text(self) -> str:
        return f"{self.num_outputs} scores per sample: class probabilities = softmax"

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float().softmax(dim=1)

    def targets(self, y: torch.Tensor) -> torch.Tensor:
        return y.long()

    def confusion_matrix(self, y: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        return _tmf().multiclass_confusion_matrix(_t(probs).double(), _t(y).long(), self.num_classes).numpy()


@register_task
class OrdinalClassification(MulticlassClassification):
    """Ordered labels 0 < 1 < ... < K-1 (severity grades): the multi-class model and metrics, judged by
    default on quadratic-weighted kappa, which penalises a prediction by its squared distance in grades."""

    name = "ordinal_classification"
    default_primary = "qwk"


# -- the built-in metrics of these tasks, registered as this module loads ------------------------------
def _register_binary_metrics() -> None:
    from bakeoff.measure.weighted import FAST_LOO, leave_one_out_metric, weighted_binary_metrics
    from bakeoff.tasks.metric import Metric, binary_table, builtin_bounds, register

    def binary(name: str, hib: bool, thresholded: bool, doc: str = "") -> None:
        def compute(t: Any, W: np.ndarray) -> np.ndarray:
            return weighted_binary_metrics(t[0], t[1], W, t[2], (name,))[name]

        loo = (lambda t: leave_one_out_metric(t[0], t[1], t[2], name)) if name in FAST_LOO else None
        register(Metric(name, hib, not thresholded, doc, binary_table, compute, loo, bounds=builtin_bounds(name)),
                 [BinaryClassification.name])

    binary("accuracy", True, True, "fraction correct at the threshold")
    binary("balanced_accuracy", True, True, "mean per-class recall at the threshold")
    binary("precision", True, True, "share of samples called positive at the threshold that are positive")
    binary("recall", True, True, "share of positive samples called positive at the threshold (sensitivity)")
    binary("f1", True, True, "harmonic mean of precision and recall at the threshold")
    binary("mcc", True, True, "Matthews correlation coefficient (0 when undefined)")
    binary("auroc", True, False, "area under the ROC curve (ties count half)")
    binary("average_precision", True, False, "area under the precision-recall curve (step-wise)")
    binary("brier", False, False, "mean squared error of the probabilities")


def _register_multiclass_metrics(tasks: tuple[str, ...]) -> None:
    from bakeoff.measure.multiclass import cm_metrics
    from bakeoff.measure.weighted import weighted_binary_metrics
    from bakeoff.tasks.metric import Metric, _div, builtin_bounds, cells_table, probs_table, register

    def confusion(name: str, doc: str = "") -> None:
        def compute(t: Any, W: np.ndarray) -> np.ndarray:
            K = t.shape[1]
            return cm_metrics((W @ t.reshape(len(t), -1)).reshape(-1, K, K), (name,))[name]

        register(Metric(name, True, False, doc, cells_table, compute, bounds=builtin_bounds(name)), tasks)

    def one_vs_rest(name: str, doc: str) -> None:
        """Macro average over the classes of the binary metric of class k against the rest; a class
        without positives or negatives in a replicate is left out of that replicate's mean (as
        torchmetrics leaves out NaN classes)."""

        def compute(t: Any, W: np.ndarray) -> np.ndarray:
            p, y = t
            vals = []
            for k in range(p.shape[1]):
                pos = y == k
                v = weighted_binary_metrics(p[:, k], pos, W, 0.5, (name,))[name]
                defined = (W[:, pos].sum(1) > 0) & (W[:, ~pos].sum(1) > 0)
                vals.append(np.where(defined, v, np.nan))
            with np.errstate(invalid="ignore"):
                return np.nanmean(np.array(vals), axis=0)

        register(Metric(name, True, True, doc, probs_table, compute, bounds=(0.0, 1.0)), tasks)

    for n, doc in (("accuracy", "fraction of arg-max decisions that are correct"),
                   ("balanced_accuracy", "mean per-class recall"), ("precision", "macro-averaged precision"),
                   ("recall", "macro-averaged recall"), ("f1", "macro-averaged F1"),
                   ("mcc", "Gorodkin's multi-class Matthews correlation (0 when undefined)"),
                   ("qwk", "quadratic-weighted Cohen's kappa (ordered classes)")):
        confusion(n, doc)
    one_vs_rest("auroc", "macro-averaged one-vs-rest AUROC")
    one_vs_rest("average_precision", "macro-averaged one-vs-rest average precision")

    def brier_update(part: dict[str, Any], task: Any, threshold: float) -> Any:
        p = np.asarray(part["probs"], dtype=np.float64)
        return ((p - np.eye(p.shape[1])[np.asarray(part["y"]).astype(np.int64)]) ** 2).sum(1)

    register(Metric("brier", False, True, "mean over samples of the squared distance of the probabilities "
                    "to the one-hot truth", brier_update, lambda b, W: _div(W @ b, W.sum(1)), bounds=(0.0, 2.0)),
             tasks)


def _register_metrics() -> None:
    from bakeoff.tasks.metric import Metric, register

    sample = (BinaryClassification.name, MulticlassClassification.name, OrdinalClassification.name)
    _register_binary_metrics()
    _register_multiclass_metrics(sample[1:])
    register(Metric("loss", False, True, "the training loss on the validation split"), sample)


_register_metrics()
