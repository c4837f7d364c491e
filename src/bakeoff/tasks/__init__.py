"""Tasks: what differs between classification, segmentation, ... lives here and nowhere else."""

from bakeoff.tasks.base import METRICS, MetricInfo, Task, get_task, metric_info

__all__ = ["METRICS", "MetricInfo", "Task", "get_task", "metric_info"]
