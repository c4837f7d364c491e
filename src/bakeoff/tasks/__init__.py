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


def resolve_study(cfg: Any, source: str | None = None) -> Any:
    """The study with what it leaves to its task filled in (``StudyConfig.with_task_defaults``): the task's
    primary metric, the direction of each selection metric, and the task's own evaluation settings checked
    with their defaults (``task_settings``). A clear error for an unknown task or setting."""
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
    return cfg.with_task_defaults(cls.default_primary, higher_is_better, task_settings(cfg, cls, source))


def task_settings(cfg: Any, cls: type[Task], source: str | None = None) -> dict[str, Any]:
    """The ``evaluation`` keys of the study that are not the shared ones (``EvaluationConfig``), checked
    against the task's own model (``Task.evaluation_settings``) with its defaults filled in. A key another
    task declares, at that task's default, is dropped: study files written before the tasks owned their
    settings listed every task's. Anything else unknown: one line with the close match."""
    import difflib

    from pydantic import ValidationError, create_model

    from bakeoff.config import EvaluationConfig, format_validation_error
    from bakeoff.errors import BakeoffError

    model = cls.evaluation_settings
    own = list(model.model_fields) if model is not None else []
    others = {k: (t.name, f.default) for t in known_tasks().values() if t.evaluation_settings is not None
              and t.evaluation_settings is not model for k, f in t.evaluation_settings.model_fields.items()}
    given = {k: v for k, v in (cfg.evaluation.model_extra or {}).items()
             if k in own or k not in others or v != others[k][1]}
    where = f"{source}: " if source else ""
    for key in given:
        if key not in own:
            known = [*EvaluationConfig.model_fields, *own]
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            raise BakeoffError(
                f"{where}evaluation.{key}: " + (f"a setting of task {others[key][0]}, not of {cls.name}; expected "
                                                f"it only in a {others[key][0]} study (remove it)" if key in others
                                                else "unknown key; expected one of the section's keys: " +
                                                (f"did you mean {close[0]!r}?" if close else ", ".join(known))))
    if model is None:
        return {}
    try:  # checked as the study file's section, so that a message names evaluation.KEY
        return create_model("Study", evaluation=(model, ...)).model_validate(
            {"evaluation": given}).evaluation.model_dump(mode="json")
    except ValidationError as exc:
        raise BakeoffError(format_validation_error(exc, source)) from None


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
        return resolve_study(cfg, source)
    except BakeoffError as exc:
        raise BakeoffError(f"{source}: task: {exc}" if not str(exc).startswith(source) else str(exc)) from None
