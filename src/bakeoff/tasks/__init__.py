"""Tasks: what differs between classification, segmentation, ... lives here and nowhere else."""

from __future__ import annotations

from typing import Any

from bakeoff.tasks.base import Task, get_task, task_class
from bakeoff.tasks.metric import Metric, metric_info, overall_metrics, register_metric

__all__ = ["Metric", "Task", "get_task", "metric_info", "overall_metrics", "register_metric", "task_class",
           "task_for"]


def task_for(task_name: str, preds: dict[str, dict[str, Any]], ev: Any = None) -> Task:
    """The task that scores these predictions (for dense tasks: with the class names and spacing the
    run saved and the study's current evaluation settings)."""
    first = next(iter(preds.values()))
    if "pred" in first:
        from bakeoff.config import EvaluationConfig
        from bakeoff.tasks.segmentation import DenseSettings

        ev = ev or EvaluationConfig()
        settings = DenseSettings.from_evaluation(first["class_names"], first["spacing"], ev)
        return get_task(task_name, len(first["class_names"]), settings)
    probs = first["probs"]
    return get_task(task_name, probs.shape[1] if probs.ndim == 2 else 2)

