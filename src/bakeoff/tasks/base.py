"""The task interface: what differs between tasks lives behind it.

Task modules import no torch at module level (tensors arrive as arguments; the few functions that make
tensors import it where they do): reading a study and resolving its task's defaults must stay light, so
that ``bakeoff status`` and a rerun of a finished study answer without loading torch."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np

from bakeoff.errors import BakeoffError
from bakeoff.tasks.registry import ENTRY_POINTS, TASKS, get_task, known_tasks, register_task, task_class

__all__ = ["ENTRY_POINTS", "TASKS", "SampleTask", "Task", "get_task", "known_tasks", "refuse_dense_settings",
           "register_task", "task_class"]

if TYPE_CHECKING:
    import torch


class Task(ABC):
    """What a task decides: output size, default loss, probabilities from logits, metrics from predictions."""

    name: str = ""
    default_loss: str = ""
    # which registered losses fit (bakeoff.losses: "binary", "multiclass", "dense", or a kind of the task's
    # own), and losses only this task has: name -> factory(ctx, *, params) -> nn.Module, importing torch inside
    loss_kind: str = "multiclass"
    own_losses: dict[str, Any] = {}
    # the task's name in prose (the methods paragraph); None: the name with spaces
    words: str | None = None
    # the task's own evaluation settings: a pydantic model (extra keys forbidden) whose fields are further
    # keys of the study file's ``evaluation`` section, checked and filled in by ``tasks.resolve_study`` and
    # read with ``read_settings``; None: the task has none
    evaluation_settings: Any = None
    # the predictions come from the network's outputs through the run's loss (its ``decode``), so a module
    # that only predicts (``bakeoff evaluate``) is built with that loss too
    decodes_with_loss: bool = False

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Every metric reported for this task: the registered ones (built in, and the user's metrics the
        study imported), then the per-class ones."""
        from bakeoff.tasks.metric import metrics_for

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

    # the metric the task is judged and selected on unless the study names one (bakeoff.tasks.resolve_study)
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

    @property
    def output_text(self) -> str:
        """What the network's output is, in words, for the model card of an exported contender."""
        return f"{self.num_outputs} output(s) per sample"

    def targets(self, y: torch.Tensor) -> torch.Tensor:
        """The label tensor in the form the loss expects."""
        return y

    @abstractmethod
    def score_part(self, d: dict[str, Any], boundary: bool | None = None,
                   threshold: float = 0.5) -> tuple[dict[str, Any], np.ndarray]:
        """One part's per-unit tables worth keeping (empty when cheap to recompute) and its confusion
        matrix (rows: truth)."""

    def health(self, d: dict[str, Any], threshold: float = 0.5) -> str:
        """'' for a healthy run, else what is wrong with its test predictions (tasks that can tell)."""
        return ""

    def chance_note(self, d: dict[str, Any], metric: str, threshold: float = 0.5, seed: int = 0) -> str | None:
        """'' unless the run's validation ``metric`` is no better than chance; None: this task cannot tell."""
        return None

    CHANCE_PERMUTATIONS = 199

    def permuted_metric(self, metric: str, probs: np.ndarray, labels: np.ndarray, threshold: float = 0.5
                        ) -> np.ndarray | None:
        """``metric`` of ``probs`` against each row of ``labels`` at once, or None: the task has no such
        form for it (``chance_note`` then scores each row in turn)."""
        return None

    def chance_by_permutation(self, d: dict[str, Any], metric: str, threshold: float = 0.5, seed: int = 0,
                              truth: str = "labels") -> str:
        """'' unless the run's validation ``metric`` (its selected epoch's predictions ``d``) is no better than
        chance: not above the 95 % point of the metric with the ``truth`` permuted (``CHANCE_PERMUTATIONS``
        times), i.e. the network learnt nothing the validation set can see (a task's ``chance_note``)."""
        from bakeoff.tasks.metric import tables_for

        y, probs = np.asarray(d["y"]), np.asarray(d["probs"])
        if len(y) < 4 or len(np.unique(y)) < 2:
            return ""
        try:
            m = self.metric(metric)
        except Exception:  # noqa: BLE001 - a metric this check cannot compute says nothing
            return ""

        def value(labels: np.ndarray) -> float:
            part = {"y": labels, "probs": probs}
            return float(m.weighted(tables_for({metric: m}, part, self, threshold)[metric], np.ones((1, len(y))))[0])

        observed = value(y)
        rng = np.random.default_rng(seed)
        shuffled = np.stack([rng.permutation(y) for _ in range(self.CHANCE_PERMUTATIONS)])
        null = self.permuted_metric(metric, probs, shuffled, threshold)
        if null is None:
            null = np.array([value(labels) for labels in shuffled])
        sign = 1.0 if m.higher_is_better else -1.0
        if not np.isfinite(observed) or sign * observed > np.nanquantile(sign * null, 0.95):
            return ""
        q = float(np.nanquantile(null, 0.95 if m.higher_is_better else 0.05))
        return (f"at chance on validation: {metric} {observed:.3f} of the selected epoch is within what shuffled "
                f"{truth} give (95 % point {q:.3f}); the network learnt nothing the validation set can see")

    @abstractmethod
    def metrics_from(self, tables: dict[str, Any], d: dict[str, Any], threshold: float = 0.5) -> dict[str, float]:
        """Every metric of one part, from its tables (``score_part``) and predictions."""

    def scoring_settings(self) -> dict[str, Any] | None:
        """What the kept tables depend on besides the predictions (None: tables are not kept)."""
        return None

    def metrics(self, y: np.ndarray, probs: np.ndarray, threshold: float = 0.5,
                names: list[str] | None = None) -> dict[str, float]:
        """Every metric (or those in ``names``) of one prediction per sample (truth ``y``, ``probs``:
        probabilities, or the predicted values of regression), each from its registered ``Metric`` (the
        training loop's validation scores; the training scores need only the primary metric)."""
        from bakeoff.tasks.metric import tables_for

        part = {"y": np.asarray(y), "probs": np.asarray(probs)}
        metrics = {name: self.metric(name) for name in self.metric_names if names is None or name in names}
        tables = tables_for(metrics, part, self, threshold)
        ones = np.ones((1, len(part["y"])))
        return {name: float(m.weighted(tables[name], ones)[0]) for name, m in metrics.items()}

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

    @classmethod
    @abstractmethod
    def for_predictions(cls, part: dict[str, Any], evaluation: Any) -> Task:
        """The task instance that scores one part's saved predictions (the classes and settings they
        carry) under the study's current ``evaluation`` settings."""

    @abstractmethod
    def class_counts(self, data: Any, idx: np.ndarray) -> list[int]:
        """Samples per class (pixels for dense tasks) of the items ``idx``."""

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

    # the tests of one (seed, fold) run pair reported beside the verdict, by name (bakeoff.stats.paired)
    per_run_tests: tuple[str, ...] = ()
    # the report's figures particular to this task, by name (report.plots.TASK_FIGURES), after the training
    # curves and metric bars every task gets
    figures: tuple[str, ...] = ()
    # expected calibration error and reliability curves of the test probabilities (stats.summary)
    calibration = False
    # resampling of the test units keeps each label's share (one label per unit) or draws units freely
    stratify_by_label = False
    # the run saves the activations of ``contenders.NAME.feature_layer`` (measure.features)
    saves_feature_maps = False

    def data_checks(self, data: Any, splits: list[Any]) -> dict[str, Any]:
        """What this task adds to data_checks.json beside the leakage checks every task gets."""
        return {}

    # -- what a run saves beside its predictions (how it trains and predicts: train.strategy, chosen from
    # ``dense``) ------------------------------------------------------------------------------------------
    @abstractmethod
    def speed_example(self, data: Any, test_idx: np.ndarray, input_shape: tuple[int, ...], batch: int) -> torch.Tensor:
        """A batch of real inputs for timing inference."""

    def save_extras(self, module: Any, data: Any, val_idx: np.ndarray, preds: dict[str, Any], contender: Any,
                    evaluation: Any, input_shape: tuple[int, ...], run_dir: Any) -> None:
        """Figures' raw material a run keeps beside its predictions (none by default)."""
        return None

    def loss_probe(self, data: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Targets and per-class counts a loss is built on when the study is checked (before training)."""
        K = self.num_classes
        return np.arange(K) % K, np.ones(K)

    def with_selection(self, protocol: Any) -> Any:
        """``protocol`` with its checkpoint selection filled in where it leaves it to the task (None): the
        task's default primary metric, in that metric's direction (as ``bakeoff.tasks.resolve_study``)."""
        sel = protocol.select
        if sel.monitor is not None and sel.mode is not None:
            return protocol
        from bakeoff.tasks.metric import metric_info

        monitor = sel.monitor or f"val/{self.default_primary}"
        try:
            hib = metric_info(monitor[4:], self.name).higher_is_better
        except KeyError:  # an unknown metric is refused by name when the study is checked
            hib = True
        return protocol.model_copy(update={"select": sel.model_copy(update={
            "monitor": monitor, "mode": sel.mode or ("max" if hib else "min")})})

    def check_metric(self, name: str, where: str) -> None:
        names = self.metric_names
        if name not in names and name != "loss":
            raise BakeoffError(f"{where}: unknown metric {name!r} for {self.name}; expected one of "
                               f"{list(names) + ['loss']}")


def refuse_dense_settings(cfg: Any, task: str) -> None:
    """Settings that only masks have, given to a task without masks: refused, not ignored."""
    if cfg.mask_values is not None:
        raise BakeoffError(f"data.mask_values: {list(cfg.mask_values)} is for the masks of semantic_segmentation "
                           f"and particle_picking; task {task} has no masks: expected it left out (labels come "
                           f"from the data source)")


class SampleTask(Task):
    """One prediction per sample (classification): ``d`` holds labels ``y`` and probabilities ``probs``."""

    figures = ("confusion_matrices", "roc_curves", "gradcam")
    stratify_by_label = True
    calibration = True

    def data_checks(self, data: Any, splits: list[Any]) -> dict[str, Any]:
        names = getattr(data, "meta", {}).get("class_names")  # label k means this class
        return {"class_names": {str(k): str(n) for k, n in enumerate(names)}} if names is not None else {}

    @abstractmethod
    def confusion_matrix(self, y: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        ...

    COLLAPSED = 0.98  # a run predicting one class for at least this share of a test set with several classes

    def health(self, d: dict[str, Any], threshold: float = 0.5) -> str:
        """'' for a healthy run; else what is wrong: it predicts (nearly) one class for the whole test set
        (from ``d["confusion"]`` when given: the confusion matrix a report already has)."""
        cm = d.get("confusion")
        cm = self.confusion_matrix(d["y"], d["probs"], threshold) if cm is None else np.asarray(cm)
        predicted, true = cm.sum(0), cm.sum(1)
        if (true > 0).sum() < 2 or predicted.sum() == 0:
            return ""
        top = int(predicted.argmax())
        share = predicted[top] / predicted.sum()
        if share < self.COLLAPSED:
            return ""
        names = d.get("class_names")
        name = str(names[top]) if names is not None and len(names) > top else str(top)
        return f"collapsed: predicts class {name!r} for {share:.0%} of the test samples (at threshold {threshold:g})"

    def chance_note(self, d: dict[str, Any], metric: str, threshold: float = 0.5, seed: int = 0) -> str:
        return self.chance_by_permutation(d, metric, threshold, seed)

    def score_part(self, d: dict[str, Any], boundary: bool | None = None,
                   threshold: float = 0.5) -> tuple[dict[str, Any], np.ndarray]:
        return {}, self.confusion_matrix(d["y"], d["probs"], threshold)

    def metrics_from(self, tables: dict[str, Any], d: dict[str, Any], threshold: float = 0.5) -> dict[str, float]:
        return self.metrics(d["y"], d["probs"], threshold)

    # -- samples held in memory --------------------------------------------------------------------------
    @classmethod
    def load_data(cls, cfg: Any, provided: Any = None) -> Any:
        from bakeoff.data.sources import load_source
        from bakeoff.data.transforms import normalize_data

        refuse_dense_settings(cfg, cls.name)
        data = provided or load_source(cfg.source, cfg.params, spatial_dims=cfg.spatial_dims,
                                       num_classes=cls.fixed_classes, image_size=cfg.image_size,
                                       channels=cfg.channels, allow_outside_root=cfg.allow_outside_root)
        normalize_data(data, cfg.normalize, cfg.in_memory)
        return data

    @classmethod
    def for_data(cls, data: Any, evaluation: Any) -> Task:
        names = data.meta.get("class_names")
        found = len(names) if names is not None else int(data.y.max()) + 1
        if cls.fixed_classes and found > cls.fixed_classes:  # (one class only: the split says so in its words)
            shown = f"classes {list(names)[:6]}" if names is not None else f"labels {sorted(set(data.y.tolist()))[:6]}"
            manifest = data.meta.get("manifest")
            if manifest is not None:  # a CSV: the file and the first row of a class too many
                first = int(np.flatnonzero(data.y >= cls.fixed_classes)[0])
                label = names[int(data.y[first])] if names is not None else int(data.y[first])
                raise BakeoffError(f"{manifest}: row {first + 2}: label {str(label)!r} makes {found} {shown}, but "
                                   f"task {cls.name} expects {cls.fixed_classes}; expected two labels (0/1 or two "
                                   f"class names): fix or remove those rows, or task: multiclass_classification")
            raise BakeoffError(f"{getattr(data, 'name', 'data')}: {found} {shown}, but task {cls.name} expects "
                               f"{cls.fixed_classes}; expected labels 0/1 (or two class names), or task: "
                               f"multiclass_classification")
        return get_task(cls.name, cls.fixed_classes or found)

    @classmethod
    def for_predictions(cls, part: dict[str, Any], evaluation: Any) -> Task:
        probs = part["probs"]
        return get_task(cls.name, probs.shape[1] if probs.ndim == 2 else 2)

    def class_counts(self, data: Any, idx: np.ndarray) -> list[int]:
        return np.bincount(data.y[idx], minlength=self.num_classes).tolist()

    def speed_example(self, data: Any, test_idx: np.ndarray, input_shape: tuple[int, ...], batch: int) -> torch.Tensor:
        import torch

        return torch.from_numpy(np.asarray(data.X[test_idx[:batch]], dtype=np.float32))

    def save_extras(self, module: Any, data: Any, val_idx: np.ndarray, preds: dict[str, Any], contender: Any,
                    evaluation: Any, input_shape: tuple[int, ...], run_dir: Any) -> None:
        """Grad-CAM of the first validation images (2D)."""
        if evaluation.gradcam and data.spatial_dims == 2:
            save_gradcam(module.model, data, val_idx, evaluation.gradcam, self.num_outputs == 1, run_dir)


GRADCAM_POOL = 3  # Grad-CAM is computed for this many times the images asked, so the report can choose


def gradcam_pool(ids: np.ndarray, y: np.ndarray, size: int) -> np.ndarray:
    """Positions of ``size`` samples taken in turn from each class (each class's samples in id order):
    the same samples for every contender, every class shown."""
    queues = [list(np.flatnonzero(y == k)[np.argsort(ids[y == k], kind="stable")]) for k in np.unique(y)]
    pick: list[int] = []
    while len(pick) < size and any(queues):
        for q in queues:
            if q and len(pick) < size:
                pick.append(int(q.pop(0)))
    return np.asarray(pick, dtype=int)


def save_gradcam(model: torch.nn.Module, data: Any, va: np.ndarray, n: int, single_logit: bool, run_dir: Any) -> None:
    """Grad-CAM of ``GRADCAM_POOL * n`` validation samples taken across classes (``gradcam_pool``: the same
    for every contender), from which the report shows ``n`` per contender; skipped when pytorch-grad-cam
    is not installed."""
    import importlib.util

    if importlib.util.find_spec("pytorch_grad_cam") is None:
        return
    from bakeoff.layout import GRADCAM_FILE
    from bakeoff.measure.gradcam import gradcam
    from bakeoff.utils import save_npz

    pick = va[gradcam_pool(data.ids[va], data.y[va], GRADCAM_POOL * n)]
    inputs = np.asarray(data.X[pick], dtype=np.float32)  # (read from the cache for image files)
    out = gradcam(model, inputs, single_logit)
    save_npz(run_dir / GRADCAM_FILE, ids=data.ids[pick], y=data.y[pick], inputs=inputs.astype(np.float16),
             shown=np.asarray(n),
             heatmaps=out["heatmaps"].astype(np.float16), classes=out["classes"], layer=np.asarray(out["layer"]),
             class_names=np.asarray(data.meta.get("class_names") or [str(k) for k in range(int(data.y.max()) + 1)]))


def read_settings(model: Any, evaluation: Any) -> Any:
    """The task's own settings (``model``, a pydantic model) from the study's ``evaluation`` section: its
    keys that the model declares (the rest are the shared settings' or, in an older study file, another
    task's), validated, defaults filled in."""
    given = {**(getattr(evaluation, "model_extra", None) or {})}
    return model.model_validate({k: v for k, v in given.items() if k in model.model_fields})
