"""Tasks: what differs between classification, segmentation, regression, ... lives here and nowhere else.

This package imports no torch when it loads (``bakeoff.tasks.base``): reading a study and resolving what
its task implies stays light."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bakeoff.tasks.base import Task, get_task, known_tasks, register_task, task_class
from bakeoff.tasks.metric import Metric, metric_info, overall_metrics, register_metric

__all__ = ["Metric", "Task", "get_task", "known_tasks", "load_study", "metric_info", "overall_metrics",
           "register_metric", "register_task", "resolve_study", "task_class", "task_for", "validate_study"]


def task_for(task_name: str, preds: dict[str, dict[str, Any]], ev: Any = None) -> Task:
    """The task that scores these predictions (with the class names, spacing and settings the run saved
    and the study's current evaluation settings)."""
    from bakeoff.config import EvaluationConfig

    return task_class(task_name).for_predictions(next(iter(preds.values())), ev or EvaluationConfig())


def resolve_study(cfg: Any) -> Any:
    """The study with what it leaves to its task filled in (``StudyConfig.with_task_defaults``): the task's
    primary metric and the direction of each selection metric. A clear error for an unknown task."""
    from bakeoff.errors import BakeoffError

    cls = task_class(cfg.task)

    def higher_is_better(name: str) -> bool:
        try:
            return metric_info(name, cfg.task).higher_is_better
        except KeyError:  # an unknown metric: refused with its own message when the study is checked
            return True

    if not cls.default_primary:
        raise BakeoffError(f"task {cfg.task}: declares no default_primary; expected the task class to name the "
                           f"metric it is judged on")
    return cfg.with_task_defaults(cls.default_primary, higher_is_better)


def load_study(path: str | Path, overrides: list[str] | None = None) -> Any:
    """Read, check and resolve a study file (``bakeoff.config.load_study``, then ``resolve_study``)."""
    from bakeoff.config import load_study as read

    return _resolved(lambda: read(path, overrides), str(path))


def validate_study(raw: dict[str, Any], source: str = "study", **kw: Any) -> Any:
    """Check and resolve a study given as a dict (``bakeoff.config.validate_study``, then ``resolve_study``)."""
    from bakeoff.config import validate_study as check

    return _resolved(lambda: check(raw, source=source, **kw), source)


def _resolved(read: Any, source: str) -> Any:
    from bakeoff.errors import BakeoffError

    cfg = read()
    try:
        return resolve_study(cfg)
    except BakeoffError as exc:
        raise BakeoffError(f"{source}: task: {exc}" if not str(exc).startswith(source) else str(exc)) from None
