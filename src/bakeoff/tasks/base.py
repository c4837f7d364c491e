"""The task interface: what differs between tasks lives behind it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch

from bakeoff.errors import BakeoffError


class Task(ABC):
    """What a task decides: output size, default loss, probabilities from logits, metrics from predictions."""

    name: str = ""
    default_loss: str = ""

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Every metric reported for this task: the registered ones (built in, and the user's metrics the
        study imported), then the per-class ones."""
        from bakeoff.tasks.metric import find_metric, metrics_for

        find_metric(self.name, "")  # the built-ins are registered on first use
        return (*(m.name for m in metrics_for(self.name) if m.name != "loss"), *self.per_class_names())

    def per_class_names(self) -> tuple[str, ...]:
        return ()

    @classmethod
    def family_of(cls, name: str) -> str | None:
        """The registered metric a per-class name belongs to (None: not a per-class name of this task)."""
        return None

    def per_class_metric(self, name: str) -> Any:
        """The ``Metric`` of a per-class name (None: not one of this task's)."""
        return None

    def metric(self, name: str) -> Any:
        """The ``Metric`` named ``name`` for this task (``bakeoff.tasks.metric``)."""
        from bakeoff.tasks.metric import find_metric

        m = find_metric(self.name, name) or self.per_class_metric(name)
        if m is None:
            raise BakeoffError(f"unknown metric {name!r} for {self.name}; expected one of "
                               f"{list(self.metric_names) + ['loss']}")
        return m

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes

    # the metric the task is judged and selected on unless the study names one (config.DEFAULT_PRIMARY
    # holds the same table for the torch-free schema; a test keeps them equal)
    default_primary: str = ""

    @classmethod
    def create(cls, num_classes: int | None, settings: Any = None) -> Task:
        """An instance for ``num_classes`` classes; a clear error when the count does not fit the task."""
        if cls.fixed_classes is not None:
            if num_classes not in (None, cls.fixed_classes):
                raise BakeoffError(f"task {cls.name}: expects {cls.fixed_classes} classes, got {num_classes}")
            return cls(cls.fixed_classes)
        if not num_classes or num_classes < 2:
            raise BakeoffError(f"task {cls.name}: needs at least 2 classes, got {num_classes}")
        return cls(num_classes)

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
    def score_part(self, d: dict[str, Any], boundary: bool | None = None,
                   threshold: float = 0.5) -> tuple[dict[str, Any], np.ndarray]:
        """One part's per-unit tables worth keeping (empty when cheap to recompute) and its confusion
        matrix (rows: truth)."""

    @abstractmethod
    def metrics_from(self, tables: dict[str, Any], d: dict[str, Any], threshold: float = 0.5) -> dict[str, float]:
        """Every metric of one part, from its tables (``score_part``) and predictions."""

    def scoring_settings(self) -> dict[str, Any] | None:
        """What the kept tables depend on besides the predictions (None: tables are not kept)."""
        return None

    def evaluate_part(self, d: dict[str, Any], threshold: float = 0.5) -> tuple[dict[str, float], np.ndarray]:
        """Every metric and the confusion matrix (rows: truth) of one part's saved predictions."""
        tables, cm = self.score_part(d, threshold=threshold)
        return self.metrics_from(tables, d, threshold), cm

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

    # -- the verdicts: two contenders' saved runs paired on the primary metric --------------------------
    unit = "sample"  # what the test set is made of, and what resampling draws

    @classmethod
    def verdict_note(cls, primary: str) -> str | None:
        """Why ``primary`` gets no paired verdict for this task (None: it does)."""
        from bakeoff.tasks.metric import find_metric

        m = find_metric(cls.name, primary)
        if m is not None and not m.resamplable:
            return f"{primary} has no per-{cls.unit} form to resample; choose another primary metric for verdicts"
        return None

    @classmethod
    def compare_runs(cls, evaluations: dict, df: Any, a: str, b: str, evaluation: Any, seed: int) -> dict | None:
        """The verdict record of contender ``a`` against ``b`` on the primary metric (None: no shared runs):
        the same pairing, estimates and tests for every task, through the primary metric's per-unit table."""
        from bakeoff.stats.compare import compare_pair, pair_runs, test_parts
        from bakeoff.tasks import task_for

        some = next(iter(test_parts(evaluations, df, a).values()), None)
        if some is None:
            return None
        task = task_for(cls.name, {"test": some}, evaluation)
        runs = pair_runs(task, evaluations, df, a, b, evaluation)
        if runs is None:
            return None
        return compare_pair(runs, a, b, evaluation, seed=seed, unit=task.unit,
                            per_run_tests=lambda key: task.per_run_tests(runs, key, evaluation))

    def per_run_tests(self, runs: Any, key: tuple[int, int], evaluation: Any) -> dict[str, Any]:
        """Tests of one (seed, fold) run pair reported beside the verdict (not part of it)."""
        return {}

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
        names = self.metric_names
        if name not in names and name != "loss":
            raise BakeoffError(f"{where}: unknown metric {name!r} for {self.name}; expected one of "
                               f"{list(names) + ['loss']}")


TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: a task is known by its ``name`` (``task:`` in the study file)."""
    TASKS[cls.name] = cls
    return cls


def _known_tasks() -> dict[str, type[Task]]:
    import bakeoff.tasks.classification  # noqa: F401 - the built-in tasks register on import
    import bakeoff.tasks.segmentation  # noqa: F401

    return TASKS


def task_class(name: str) -> type[Task]:
    """The class of task ``name`` (what a study is before its data are loaded)."""
    tasks = _known_tasks()
    if name not in tasks:
        import difflib

        close = difflib.get_close_matches(name, list(tasks), n=1)
        raise BakeoffError(f"unknown task {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                           + f"; expected one of {sorted(tasks)}")
    return tasks[name]


def get_task(name: str, num_classes: int | None = None, settings: Any = None) -> Task:
    """A task instance for ``num_classes`` classes (and, for dense tasks, scoring ``settings``)."""
    return task_class(name).create(num_classes, settings)


class SampleTask(Task):
    """One prediction per sample (classification): ``d`` holds labels ``y`` and probabilities ``probs``."""

    def metrics(self, y: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
        """Every metric of these predictions, each from its registered ``Metric``."""
        from bakeoff.tasks.metric import tables_for

        part = {"y": np.asarray(y), "probs": np.asarray(probs)}
        metrics = {name: self.metric(name) for name in self.metric_names}
        tables = tables_for(metrics, part, self, threshold)
        ones = np.ones((1, len(part["y"])))
        return {name: float(m.weighted(tables[name], ones)[0]) for name, m in metrics.items()}

    @abstractmethod
    def confusion_matrix(self, y: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        ...

    def score_part(self, d: dict[str, Any], boundary: bool | None = None,
                   threshold: float = 0.5) -> tuple[dict[str, Any], np.ndarray]:
        return {}, self.confusion_matrix(d["y"], d["probs"], threshold)

    def metrics_from(self, tables: dict[str, Any], d: dict[str, Any], threshold: float = 0.5) -> dict[str, float]:
        return self.metrics(d["y"], d["probs"], threshold)

    # -- samples held in memory --------------------------------------------------------------------------
    @classmethod
    def load_data(cls, cfg: Any, provided: Any = None) -> Any:
        from bakeoff.data.sources import load_source
        from bakeoff.data.transforms import normalize

        data = provided or load_source(cfg.source, cfg.params, spatial_dims=cfg.spatial_dims,
                                       num_classes=cls.fixed_classes, image_size=cfg.image_size,
                                       channels=cfg.channels, allow_outside_root=cfg.allow_outside_root)
        data.X = normalize(data.X, cfg.normalize)
        return data

    @classmethod
    def for_data(cls, data: Any, evaluation: Any) -> Task:
        names = data.meta.get("class_names")
        found = len(names) if names is not None else int(data.y.max()) + 1
        if cls.fixed_classes and found > cls.fixed_classes:  # (one class only: the split says so in its words)
            shown = f"classes {list(names)[:6]}" if names is not None else f"labels {sorted(set(data.y.tolist()))[:6]}"
            raise BakeoffError(f"{getattr(data, 'name', 'data')}: {found} {shown}, but task {cls.name} expects "
                               f"{cls.fixed_classes}; expected labels 0/1 (or two class names), or task: "
                               f"multiclass_classification")
        return get_task(cls.name, cls.fixed_classes or found)

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
