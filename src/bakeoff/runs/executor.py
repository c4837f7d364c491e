"""Executors: who runs the planned runs. Each run is self-contained (``RunSpec`` carries its resolved
protocol), so the same ``execute_run`` can run in this process or elsewhere; results land in the study
directory either way and a finished run is never run again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from bakeoff.errors import BakeoffError
from bakeoff.runs.context import StudyContext
from bakeoff.runs.spec import RunSpec
from bakeoff.runs.store import StudyStore

Progress = Callable[[str, RunSpec, Any], None]


class Executor(Protocol):
    def execute(self, ctx: StudyContext, store: StudyStore, runs: list[RunSpec],
                progress: Progress | None = None) -> None:
        """Run every run of ``runs`` that the store does not hold as done."""


class LocalExecutor:
    """One run after another in this process (``execution.backend: local``)."""

    def execute(self, ctx: StudyContext, store: StudyStore, runs: list[RunSpec],
                progress: Progress | None = None) -> None:
        from bakeoff.runs.runner import execute_run

        for run in runs:
            if store.is_done(run):
                if progress:
                    progress("skip", run, store.run_info(run))
                continue
            if progress:
                progress("start", run, None)
            report = (lambda e, m, d, _r=run: progress("epoch", _r, (e, m, d))) if progress else None
            info = execute_run(ctx, store, run, report)
            if progress:
                progress("end", run, info)


def executor_for(backend: str) -> Executor:
    if backend == "local":
        return LocalExecutor()
    raise BakeoffError(f"execution.backend: {backend!r} is not available; expected 'local'")
