"""The executors' registry: what each ``execution.backend`` can do (``ExecutorSpec``), and what every
executor shares (the runs left to do, the threads a run gets). The study's checks (``runs.context``) and
``bakeoff status`` ask this registry, never a backend's name; the built-in executors register themselves
in ``runs.executor``, which ``executors()`` loads by name, so that the checks below the executors do not
import them (the executors import the context: the registry breaks what would be a circle)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from bakeoff.errors import BakeoffError
from bakeoff.runs.events import Damaged, Progress, Skipped
from bakeoff.runs.spec import RunSpec
from bakeoff.runs.store import StudyStore

if TYPE_CHECKING:
    from bakeoff.runs.context import StudyContext

BUILT_IN = ("bakeoff.runs.executor",)  # the modules whose executors register when they load


class Executor(Protocol):
    def execute(self, ctx: StudyContext, store: StudyStore, runs: list[RunSpec],
                progress: Progress | None = None) -> None:
        """Run every run of ``runs`` that the store does not hold as done."""


def not_done(store: StudyStore, runs: list[RunSpec], progress: Progress | None = None) -> list[RunSpec]:
    """The runs left to do; each finished one is reported as skipped."""
    todo = []
    for run in runs:
        if store.is_done(run):
            if progress:
                progress(Skipped(run, store.run_info(run) or {}))
        else:
            damage = store.damaged(run)
            if damage and progress:
                progress(Damaged(run, damage))
            todo.append(run)
    return todo


def _set_threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(int(n))


@dataclass(frozen=True)
class ExecutorSpec:
    """A registered executor: its factory ``make(execution, detach)`` and what it can do, which the
    study's checks ask instead of naming backends."""

    name: str
    make: Callable[[Any, bool], Executor]
    doc: str
    detaches: bool = False  # can submit the runs and return at once (--detach)
    multi_node: bool = False  # can start one run's processes on several nodes (protocol.num_nodes > 1)
    trains_here: Callable[[Any], bool] = lambda execution: True  # runs train on this machine
    # the jobs it submitted for a study directory and the scheduler's state of each (None: cannot ask):
    # ``queue(root) -> ({run key: job id}, {job id: state} | None)``, read by ``bakeoff status``
    queue: Callable[[Any], tuple[dict[str, str], dict[str, str] | None]] | None = None
    job_word: str = "job"  # how status names one of its jobs ("SLURM job 1234")


EXECUTORS: dict[str, ExecutorSpec] = {}


def register_executor(name: str, *, doc: str, detaches: bool = False, multi_node: bool = False,
                      trains_here: Callable[[Any], bool] | None = None,
                      queue: Callable[[Any], tuple[dict[str, str], dict[str, str] | None]] | None = None,
                      job_word: str = "job") -> Callable[[Callable], Callable]:
    """Register ``fn(execution, detach) -> Executor`` as ``execution.backend: name``."""
    def wrap(fn: Callable[[Any, bool], Executor]) -> Callable[[Any, bool], Executor]:
        EXECUTORS[name] = ExecutorSpec(name, fn, doc, detaches, multi_node, trains_here or (lambda execution: True),
                                       queue, job_word)
        return fn
    return wrap


def executors() -> dict[str, ExecutorSpec]:
    """Every registered executor: the built-in ones (their module loaded by name) and any registered since."""
    for module in BUILT_IN:
        importlib.import_module(module)
    return EXECUTORS


def executor_spec(backend: str) -> ExecutorSpec:
    if backend not in executors():
        import difflib

        close = difflib.get_close_matches(backend, list(EXECUTORS), n=1)
        raise BakeoffError(f"execution.backend: {backend!r} is not a registered executor"
                           + (f" (did you mean {close[0]!r}?)" if close else "") + f"; expected one of {sorted(EXECUTORS)}")
    return EXECUTORS[backend]


