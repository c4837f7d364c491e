"""The one metric protocol: every metric a study reports, logs, resamples, tests and plots.

A metric, in the spirit of torchmetrics' ``update``/``compute`` split, is two functions:
``update(part, task, threshold)`` turns one part's saved predictions into a per-unit table (the
sufficient statistics of each test sample, or of each image for dense tasks), and ``compute(table, W)``
gives the metric under unit weights ``W`` (B, n): ones for the plain value, bootstrap multiplicities for
the bootstrap, leave-one-out weights for the jackknife of ``bakeoff.stats.design``. The training logs,
``results.csv``, the intervals, the verdicts and the report all call these, so a metric is written once.
It also declares its direction (``higher_is_better``), whether it needs a decision threshold, and which
tasks it fits (the registry is keyed by task and name).

The built-in ``compute`` functions are vectorised over replicates (``bakeoff.measure.weighted`` for binary
metrics, ``bakeoff.measure.multiclass`` for confusion-matrix metrics, ``aggregate`` for ratio-of-sums dense
metrics), because no library offers metrics under many weight vectors at once; tests check each against
scikit-learn, torchmetrics and MONAI. A user's metric is a plain function ``fn(y, probs) -> float``
decorated with :func:`register_metric`; its ``compute`` resamples explicitly (weights are integer counts),
slower but exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from bakeoff.errors import BakeoffError

Update = Callable[[dict[str, Any], Any, float], Any]
Compute = Callable[[Any, np.ndarray], np.ndarray]

# the tasks a user's own metric (``register_metric``) is registered for unless it names others
SAMPLE_TASKS = ("binary_classification", "multiclass_classification", "ordinal_classification")


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    threshold_free: bool = True  # False: computed from hard decisions at the study's threshold
    description: str = ""
    update: Update | None = None  # None (with compute): no per-unit form, so no resampling or verdicts
    compute: Compute | None = None
    leave_one_out: Callable[[Any], np.ndarray] | None = None  # a closed form of compute(table, 1 - I)
    tasks: tuple[str, ...] = ()
    # the range the metric's values lie in ((0, inf) for a distance); None: unbounded or not declared.
    # Intervals of a contender's own score stay inside it (logit scale), differences inside +-(hi - lo)
    bounds: tuple[float, float] | None = None
    # a user metric's code (SHA-256 of its module's source): kept scores computed by other code are stale
    source: str | None = None

    @property
    def resamplable(self) -> bool:
        """Whether intervals and paired verdicts can be computed (the metric has a per-unit form)."""
        return self.update is not None and self.compute is not None

    def table(self, part: dict[str, Any], task: Any, threshold: float = 0.5) -> Any:
        if self.update is None:
            raise ValueError(f"metric {self.name} has no per-unit form")
        return self.update(part, task, threshold)

    def value(self, part: dict[str, Any], task: Any, threshold: float = 0.5) -> float:
        """The metric of one part's predictions (every unit weighted 1)."""
        return float(self.weighted(self.table(part, task, threshold), np.ones((1, len(part["ids"] if "ids" in part
                                                                                        else part["y"]))))[0])

    def weighted(self, table: Any, W: np.ndarray) -> np.ndarray:
        assert self.compute is not None
        return np.asarray(self.compute(table, np.asarray(W, dtype=np.float64)), dtype=np.float64)


REGISTRY: dict[tuple[str, str], Metric] = {}
_TASK_MODULES_LOADED = False


def _registered() -> dict[tuple[str, str], Metric]:
    """The registry with every task's own metrics in it: a built-in task registers its metrics in its own
    module (``tasks/classification.py``, ``segmentation.py``, ``regression.py``), so the task modules are
    loaded once before the first lookup."""
    global _TASK_MODULES_LOADED
    if not _TASK_MODULES_LOADED:
        _TASK_MODULES_LOADED = True
        from bakeoff.tasks.registry import known_tasks

        known_tasks()
    return REGISTRY


def builtin_bounds(name: str) -> tuple[float, float]:
    """The range of a built-in metric (or a per-class member of its family); multi-class Brier, whose
    range is (0, 2), declares its own."""
    family = name.rsplit("_class", 1)[0]

    def of(*families: str) -> bool:  # the family itself, or a per-class member (dice_nucleus, mcc_class2)
        return any(family == f or family.startswith(f + "_") for f in families)

    if of("mcc", "qwk"):
        return -1.0, 1.0
    if of("hd95", "mean_hd95", "localisation_error", "loss"):
        return 0.0, float("inf")
    return 0.0, 1.0


def register(metric: Metric, tasks: Iterable[str]) -> Metric:
    metric = replace(metric, tasks=tuple(tasks))
    for t in metric.tasks:
        REGISTRY[(t, metric.name)] = metric
    return metric


def metrics_for(task: str) -> list[Metric]:
    """The registered metrics of a task, in registration order."""
    return [m for (t, _), m in _registered().items() if t == task]


def find_metric(task: str, name: str) -> Metric | None:
    return _registered().get((task, name))


def overall_metrics(task: str) -> list[str]:
    """The names of a task's registered metrics (not per class), the training loss left out."""
    return [m.name for m in metrics_for(task) if m.name != "loss"]


def metric_info(name: str, task: str | None = None) -> Metric:
    """What every task agrees on about metric ``name`` (direction, threshold): its registered entry, or
    for a per-class name of ``task`` (``dice_nucleus``, ``f1_class2``) the entry of its family, by the
    task's own naming rule (``Task.family_of``)."""
    for (t, n), m in _registered().items():
        if n == name and (task is None or t == task):
            return m
    if task is not None:
        from bakeoff.tasks.registry import task_class

        family = task_class(task).family_of(name)
        if family is not None:
            return replace(metric_info(family, task), name=name, update=None, compute=None, leave_one_out=None)
    raise KeyError(f"no registered metric {name!r}" + (f" for {task}" if task else ""))


# -- a user's own metric -------------------------------------------------------------------------------
def register_metric(name: str | None = None, *, higher_is_better: bool, tasks: Iterable[str] = SAMPLE_TASKS,
                    needs_threshold: bool = False, description: str = "",
                    bounds: tuple[float, float] | None = None) -> Callable[[Callable], Callable]:
    """Decorator: ``fn(y, probs) -> float`` (``fn(y, probs, threshold)`` with ``needs_threshold``) becomes a
    metric of ``tasks`` named ``name`` (default: the function's name). ``probs`` is (n,) P(class 1) for
    binary classification, (n, K) for multi-class, the predicted values for regression. A study uses it with ``evaluation.metrics:
    [package.module:function]``; it is then reported, logged, usable as ``primary`` and
    ``select.monitor``, resampled and compared like a built-in metric. ``bounds``: the range its values
    lie in (e.g. ``(0, 1)``), so that its intervals stay inside it."""
    from bakeoff.tasks.registry import known_tasks

    tasks = tuple(tasks)
    known = known_tasks()
    bad = [t for t in tasks if t not in known or known[t].dense]
    if bad:
        able = sorted(n for n, c in known.items() if not c.dense)
        raise ValueError(f"register_metric: tasks {bad} are not tasks with one prediction per sample; a user metric "
                         f"is a function of (y, probs) for {able}")

    def wrap(fn: Callable) -> Callable:
        def update(part: dict[str, Any], task: Any, threshold: float) -> Any:
            return np.asarray(part["y"]), np.asarray(part["probs"], dtype=np.float64), threshold

        def compute(table: Any, W: np.ndarray) -> np.ndarray:
            y, p, thr = table
            counts = np.rint(W).astype(np.int64)
            if not np.allclose(W, counts):
                raise ValueError(f"metric {m.name}: resampling weights must be whole counts")
            extra = (thr,) if needs_threshold else ()
            return np.array([float(fn(np.repeat(y, c), np.repeat(p, c, axis=0), *extra)) for c in counts])

        doc = description or " ".join((fn.__doc__ or "").strip().split("\n\n")[0].split())
        m = register(Metric(name or fn.__name__, higher_is_better, not needs_threshold, doc, update, compute,
                            bounds=tuple(bounds) if bounds is not None else None, source=_source_hash(fn)), tasks)
        fn.metric = m  # type: ignore[attr-defined]
        return fn

    return wrap


def _source_hash(fn: Callable) -> str | None:
    """SHA-256 of the source text of the module that defines a function (so that an edited helper or
    constant beside it counts as a change too; an edit elsewhere in that module only costs recomputing the
    scores from the saved predictions), else of the function alone (a notebook cell), else None (a REPL).
    Code the function imports from other modules is not covered."""
    import hashlib
    import inspect

    for obj in (inspect.getmodule(fn), fn):
        try:
            return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()  # type: ignore[arg-type]
        except (OSError, TypeError):
            continue
    return None


def load_user_metrics(refs: Iterable[str], where: str = "evaluation.metrics") -> list[Metric]:
    """Import each ``package.module:function`` (registering its metric) and return the metrics."""
    from bakeoff.components import import_callable

    out = []
    for i, ref in enumerate(refs):
        fn = import_callable(ref, f"{where}[{i}]")
        m = getattr(fn, "metric", None)
        if not isinstance(m, Metric):
            raise BakeoffError(f"{where}[{i}]: {ref} is not a metric; expected a function decorated with "
                               f"@bakeoff.register_metric(higher_is_better=..., tasks=[...])")
        out.append(m)
    return out


# -- built-in metrics ----------------------------------------------------------------------------------
# Tables several metrics share: one function each, so ``tables_for`` builds each table once per part.
def binary_table(part: dict[str, Any], task: Any, threshold: float) -> Any:
    return np.asarray(part["probs"], dtype=np.float64), np.asarray(part["y"]).astype(bool), threshold


def cells_table(part: dict[str, Any], task: Any, threshold: float) -> Any:
    from bakeoff.measure.multiclass import class_cells

    return class_cells(part["y"], part["probs"])


def probs_table(part: dict[str, Any], task: Any, threshold: float) -> Any:
    return np.asarray(part["probs"], dtype=np.float64), np.asarray(part["y"]).astype(np.int64)


def tables_for(metrics: dict[str, Metric], part: dict[str, Any], task: Any, threshold: float) -> dict[str, Any]:
    """Each metric's per-unit table, every distinct ``update`` run once."""
    built: dict[Any, Any] = {}
    out = {}
    for name, m in metrics.items():
        if m.update not in built:
            built[m.update] = m.table(part, task, threshold)
        out[name] = built[m.update]
    return out


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)
