"""The task interface and the one table of metric directions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bakeoff.errors import BakeoffError


@dataclass(frozen=True)
class MetricInfo:
    name: str
    higher_is_better: bool
    threshold_free: bool = False
    description: str = ""


# One source of truth for every metric's direction and nature.
METRICS: dict[str, MetricInfo] = {m.name: m for m in [
    MetricInfo("accuracy", True, description="fraction correct at the threshold"),
    MetricInfo("balanced_accuracy", True, description="mean per-class recall at the threshold"),
    MetricInfo("precision", True),
    MetricInfo("recall", True),
    MetricInfo("f1", True),
    MetricInfo("mcc", True, description="Matthews correlation coefficient"),
    MetricInfo("qwk", True, description="quadratic-weighted Cohen's kappa (ordered classes)"),
    MetricInfo("auroc", True, threshold_free=True),
    MetricInfo("average_precision", True, threshold_free=True),
    MetricInfo("brier", False, threshold_free=True, description="mean squared error of the probabilities"),
    MetricInfo("loss", False, threshold_free=True),
    MetricInfo("mean_dice", True, description="Dice averaged over images, then over the scored classes"),
    MetricInfo("mean_iou", True), MetricInfo("mean_precision", True), MetricInfo("mean_recall", True),
    MetricInfo("pixel_accuracy", True),
    MetricInfo("mean_hd95", False, description="95th-percentile Hausdorff distance, physical units"),
    MetricInfo("mean_nsd", True, description="normalised surface distance at the study's tolerance"),
    MetricInfo("particle_f1", True, description="F1 of predicted vs true particle centres (Hungarian)"),
    MetricInfo("particle_precision", True), MetricInfo("particle_recall", True),
    MetricInfo("pixel_auroc", True, threshold_free=True),
    MetricInfo("dice", True, description="particle picking: Dice of the particle class"),
    MetricInfo("iou", True), MetricInfo("hd95", False), MetricInfo("nsd", True),
    MetricInfo("localisation_error", False, description="mean distance of matched centres, pixels"),
]}
_LOWER_PREFIXES = ("hd95", "mean_hd95", "localisation_error", "n_undefined", "loss", "brier")


def metric_info(name: str) -> MetricInfo:
    """The table entry, or for per-class names (``dice_nucleus``) the entry of their metric family."""
    if name in METRICS:
        return METRICS[name]
    return MetricInfo(name, not name.startswith(_LOWER_PREFIXES))


class Task(ABC):
    """What a task decides: output size, default loss, probabilities from logits, metrics from predictions."""

    name: str = ""
    default_loss: str = ""
    metric_names: tuple[str, ...] = ()

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes

    @property
    @abstractmethod
    def num_outputs(self) -> int:
        ...

    @abstractmethod
    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        ...

    def targets(self, y: torch.Tensor) -> torch.Tensor:
        """The label tensor in the form the loss expects."""
        return y

    @abstractmethod
    def evaluate_part(self, d: dict[str, Any], threshold: float = 0.5) -> tuple[dict[str, float], np.ndarray]:
        """Every metric and the confusion matrix (rows: truth) of one part's saved predictions."""

    def curves(self, y: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
        return {}

    dense = False  # per-pixel predictions (segmentation, particle picking)
    fixed_classes: int | None = None  # binary tasks and particle picking: always 2
    thresholded = False  # hard decisions from a probability threshold (binary classification)

    # -- the study's data, before a task instance exists ---------------------------------------------
    @classmethod
    @abstractmethod
    def load_data(cls, cfg: Any, provided: Any = None) -> Any:
        """The study's data (``data:`` section ``cfg``), loaded, checked and normalised."""

    @classmethod
    @abstractmethod
    def for_data(cls, data: Any, evaluation: Any) -> Task:
        """The task instance these data and evaluation settings give (classes, scoring settings)."""

    @abstractmethod
    def class_counts(self, data: Any, idx: np.ndarray) -> list[int]:
        """Samples per class (pixels for dense tasks) of the items ``idx``."""

    @abstractmethod
    def input_shape(self, data: Any, protocol: Any, train_idx: np.ndarray) -> tuple[int, ...]:
        """What the network sees: a sample's shape, or the training patch size."""

    # -- the verdicts: how two contenders' saved runs are paired and compared ---------------------------
    @classmethod
    def verdict_note(cls, primary: str) -> str | None:
        """Why ``primary`` gets no paired verdict for this task (None: it does)."""
        return None

    @classmethod
    @abstractmethod
    def compare_runs(cls, evaluations: dict, df: Any, a: str, b: str, evaluation: Any, seed: int) -> dict | None:
        """The verdict record of contender ``a`` against ``b`` on the primary metric (None: no shared runs)."""

    # -- what a run does, which differs by task (runs/runner.py calls these; nothing there branches on
    # the task) -------------------------------------------------------------------------------------
    @abstractmethod
    def fit(self, model: Any, protocol: Any, data: Any, train_idx: np.ndarray, val_idx: np.ndarray, *,
            run_dir: Any, seed: int, threshold: float, report: Any = None) -> Any:
        """Train ``model`` with its own loop and loaders, selecting on ``val_idx``; a ``FitResult``."""

    @abstractmethod
    def module_for(self, model: Any, protocol: Any, input_shape: tuple[int, ...], threshold: float) -> Any:
        """An (untrained) module around ``model`` that predicts as a trained one does."""

    @abstractmethod
    def predict_parts(self, module: Any, data: Any, val_idx: np.ndarray, test_idx: np.ndarray,
                      protocol: Any) -> dict[str, dict[str, Any]]:
        """The saved form of the validation and test predictions, ``{part: {...}}``."""

    @abstractmethod
    def speed_example(self, data: Any, test_idx: np.ndarray, input_shape: tuple[int, ...], batch: int) -> torch.Tensor:
        """A batch of real inputs for timing inference."""

    def save_extras(self, module: Any, data: Any, val_idx: np.ndarray, preds: dict[str, Any], contender: Any,
                    evaluation: Any, input_shape: tuple[int, ...], run_dir: Any) -> None:
        """Figures' raw material a run keeps beside its predictions (none by default)."""
        return None

    def check_metric(self, name: str, where: str) -> None:
        if name not in self.metric_names and name != "loss":
            raise BakeoffError(f"{where}: unknown metric {name!r} for {self.name}; expected one of "
                               f"{list(self.metric_names) + ['loss']}")


def task_class(name: str) -> type[Task]:
    """The class of task ``name`` (what a study is before its data are loaded)."""
    from bakeoff.tasks.classification import (
        BinaryClassification,
        MulticlassClassification,
        OrdinalClassification,
    )
    from bakeoff.tasks.segmentation import ParticlePicking, SemanticSegmentation

    classes = {c.name: c for c in (BinaryClassification, MulticlassClassification, OrdinalClassification,
                                   SemanticSegmentation, ParticlePicking)}
    if name not in classes:
        raise BakeoffError(f"unknown task {name!r}; expected one of {sorted(classes)}")
    return classes[name]


def get_task(name: str, num_classes: int | None = None, settings: Any = None) -> Task:
    from bakeoff.tasks.classification import BinaryClassification, MulticlassClassification
    from bakeoff.tasks.segmentation import ParticlePicking, SemanticSegmentation

    if name == "semantic_segmentation":
        if not num_classes or num_classes < 2:
            raise BakeoffError(f"task {name}: needs at least 2 classes (background included), got {num_classes}")
        return SemanticSegmentation(num_classes, settings)
    if name == "particle_picking":
        if num_classes not in (None, 2):
            raise BakeoffError(f"task {name}: masks hold background 0 and particle 1; got {num_classes} classes")
        return ParticlePicking(2, settings)

    if name == "binary_classification":
        return BinaryClassification(2)
    if name in ("multiclass_classification", "ordinal_classification"):
        if not num_classes or num_classes < 2:
            raise BakeoffError(f"task {name}: needs at least 2 classes, got {num_classes}")
        from bakeoff.tasks.classification import OrdinalClassification

        return (MulticlassClassification if name == "multiclass_classification" else OrdinalClassification)(num_classes)
    raise BakeoffError(f"unknown task {name!r}; expected binary_classification, multiclass_classification, "
                       f"ordinal_classification, semantic_segmentation or particle_picking")


class SampleTask(Task):
    """One prediction per sample (classification): ``d`` holds labels ``y`` and probabilities ``probs``."""

    @abstractmethod
    def metrics(self, y: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
        ...

    @abstractmethod
    def confusion_matrix(self, y: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        ...

    def evaluate_part(self, d: dict[str, Any], threshold: float = 0.5) -> tuple[dict[str, float], np.ndarray]:
        return self.metrics(d["y"], d["probs"], threshold), self.confusion_matrix(d["y"], d["probs"], threshold)

    # -- samples held in memory --------------------------------------------------------------------------
    @classmethod
    def load_data(cls, cfg: Any, provided: Any = None) -> Any:
        from bakeoff.data.sources import load_source
        from bakeoff.data.transforms import normalize

        data = provided or load_source(cfg.source, cfg.params, spatial_dims=cfg.spatial_dims,
                                       num_classes=cls.fixed_classes, image_size=cfg.image_size,
                                       channels=cfg.channels)
        data.X = normalize(data.X, cfg.normalize)
        return data

    @classmethod
    def for_data(cls, data: Any, evaluation: Any) -> Task:
        k = cls.fixed_classes or len(data.meta.get("class_names") or range(int(data.y.max()) + 1))
        return get_task(cls.name, k)

    def class_counts(self, data: Any, idx: np.ndarray) -> list[int]:
        return np.bincount(data.y[idx], minlength=self.num_classes).tolist()

    def input_shape(self, data: Any, protocol: Any, train_idx: np.ndarray) -> tuple[int, ...]:
        return data.input_shape

    # -- a run on samples held in memory -------------------------------------------------------------
    def fit(self, model: Any, protocol: Any, data: Any, train_idx: np.ndarray, val_idx: np.ndarray, *,
            run_dir: Any, seed: int, threshold: float, report: Any = None) -> Any:
        from bakeoff.train.fit import fit

        return fit(self, model, protocol, data.X[train_idx], data.y[train_idx], data.X[val_idx], data.y[val_idx],
                   run_dir=run_dir, threshold=threshold, report=report)

    def module_for(self, model: Any, protocol: Any, input_shape: tuple[int, ...], threshold: float) -> Any:
        from bakeoff.train.module import BakeoffModule

        return BakeoffModule(model, self, torch.nn.Identity(), protocol, threshold)

    def predict_parts(self, module: Any, data: Any, val_idx: np.ndarray, test_idx: np.ndarray,
                      protocol: Any) -> dict[str, dict[str, Any]]:
        from bakeoff.train.module import inference_batch

        return {part: {"ids": data.ids[idx], "y": data.y[idx],
                       "probs": module.predict_arrays(data.X[idx], inference_batch(protocol))}
                for part, idx in (("val", val_idx), ("test", test_idx))}

    def speed_example(self, data: Any, test_idx: np.ndarray, input_shape: tuple[int, ...], batch: int) -> torch.Tensor:
        return torch.from_numpy(data.X[test_idx[:batch]])

    def save_extras(self, module: Any, data: Any, val_idx: np.ndarray, preds: dict[str, Any], contender: Any,
                    evaluation: Any, input_shape: tuple[int, ...], run_dir: Any) -> None:
        """Grad-CAM of the first validation images (2D)."""
        if evaluation.gradcam and data.spatial_dims == 2:
            from bakeoff.runs.runner import save_gradcam

            save_gradcam(module.model, data, val_idx, evaluation.gradcam, self.num_outputs == 1, run_dir)
