"""The registry of tasks: each task class registers itself by name (``register_task``); ``known_tasks``
loads every module of this package (each registers its task, and its metrics), then the tasks other
installed packages declare as entry points. Below ``base`` and ``metric``, which both look tasks up here,
so neither imports the other to find them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bakeoff.errors import BakeoffError

if TYPE_CHECKING:
    from bakeoff.tasks.base import Task

TASKS: dict[str, type[Task]] = {}
ENTRY_POINTS = "bakeoff.tasks"  # a package's own tasks: [project.entry-points."bakeoff.tasks"] NAME = "mod:Class"


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: a task is known by its ``name`` (``task:`` in the study file)."""
    TASKS[cls.name] = cls
    return cls


def known_tasks() -> dict[str, type[Task]]:
    """Every task: each module of this package registers its own on import (a new built-in task is one
    new file here, listed nowhere else), then the tasks other installed packages declare as entry points
    (group ``bakeoff.tasks``), then any a study's imported module registered with ``register_task``."""
    import importlib
    import importlib.metadata
    import pkgutil

    for mod in pkgutil.iter_modules([str(Path(__file__).parent)]):  # the package's modules, found by file
        importlib.import_module(f"{__package__}.{mod.name}")
    for ep in importlib.metadata.entry_points(group=ENTRY_POINTS):
        if ep.name not in TASKS:
            cls = ep.load()
            TASKS.setdefault(getattr(cls, "name", "") or ep.name, cls)
    return TASKS


def task_class(name: str) -> type[Task]:
    """The class of task ``name`` (what a study is before its data are loaded)."""
    tasks = TASKS if name in TASKS else known_tasks()
    if name not in tasks:
        import difflib

        close = difflib.get_close_matches(name, list(tasks), n=1)
        raise BakeoffError(f"unknown task {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                           + f"; expected one of {sorted(tasks)}")
    return tasks[name]


def get_task(name: str, num_classes: int | None = None, settings: Any = None) -> Task:
    """A task instance for ``num_classes`` classes (and, for dense tasks, scoring ``settings``)."""
    return task_class(name).create(num_classes, settings)
