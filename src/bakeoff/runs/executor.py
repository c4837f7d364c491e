"""Executors: who runs the planned runs. Each run is self-contained (``RunSpec`` carries its resolved
protocol), so the same ``execute_run`` runs it in this process, in a Ray worker or in a SLURM job;
results land in the study directory either way, and a finished run is never run again.

Ray does the scheduling (no process pool of ours): ``execution.workers: N`` starts a local Ray and keeps N
runs in flight; ``execution.backend: ray`` joins ``execution.address`` (or starts a local Ray) with
``cpus_per_run`` / ``gpus_per_run`` per run (fractions pack small runs onto one GPU). Each worker
rebuilds the study's context from the resolved study and the data, which Ray's object store holds once
for all workers; epochs stream back to the driver through a Ray queue."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from bakeoff.errors import BakeoffError, StorageFull
from bakeoff.runs.backends import (  # noqa: F401  (the registry, public here too)
    EXECUTORS,
    Executor,
    ExecutorSpec,
    _set_threads,
    executor_spec,
    not_done,
    register_executor,
)
from bakeoff.runs.events import EpochDone, Finished, Progress, Started
from bakeoff.runs.spec import RunSpec
from bakeoff.runs.store import StudyStore

if TYPE_CHECKING:
    from bakeoff.runs.context import StudyContext

Batch = tuple["StudyContext", StudyStore, list[RunSpec]]  # one study's share of the work


class LocalExecutor:
    """One run after another in this process (``execution.backend: local``, ``workers: 1``)."""

    def execute(self, ctx: StudyContext, store: StudyStore, runs: list[RunSpec],
                progress: Progress | None = None) -> None:
        from bakeoff.runs.runner import execute_run

        _set_threads(ctx.config.execution.threads_per_run)
        for run in not_done(store, runs, progress):
            if progress:
                progress(Started(run))
            report = (lambda e, m, d, _r=run: progress(EpochDone(_r, e, m, d))) if progress else None
            info = execute_run(ctx, store, run, report)
            if progress:
                progress(Finished(run, info))


def _remote_run(config: dict[str, Any], data: Any, out: str, run: RunSpec, threads: int | None,
                queue: Any = None, batch: int = 0) -> dict[str, Any]:
    """What a Ray worker does: rebuild the context from the resolved study and the shared data, run."""
    from bakeoff.config import StudyConfig
    from bakeoff.runs.context import StudyContext  # (in the worker's own process)
    from bakeoff.runs.runner import execute_run

    _set_threads(threads)
    ctx = StudyContext(StudyConfig.model_validate(config), data, loaded=True)
    report = None
    if queue is not None:
        def report(epoch: int, epochs: int, metrics: dict[str, float]) -> None:
            queue.put_nowait((batch, run.key, epoch, epochs, {k: float(v) for k, v in metrics.items()}))
    return execute_run(ctx, StudyStore(out), run, report)


def _storage_full_cause(exc: BaseException) -> StorageFull | None:
    """The full disk behind a Ray task's failure, if that is what it was (``RayTaskError.cause``)."""
    cause = getattr(exc, "cause", exc)
    return cause if isinstance(cause, StorageFull) else None


class RayExecutor:
    """Runs as Ray tasks: a local Ray with ``workers`` runs at once, or the cluster at ``address``."""

    def __init__(self, address: str | None, workers: int | None, cpus: float, gpus: float,
                 threads: int | None) -> None:
        self.address, self.workers, self.cpus, self.gpus, self.threads = address, workers, cpus, gpus, threads

    def _init(self) -> Any:
        try:
            import ray
        except ImportError:
            raise BakeoffError("execution: Ray is not installed; expected pip install 'bakeoff[ray]'") from None
        if ray.is_initialized():
            return ray
        env = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}}  # the user's modules too
        kw: dict[str, Any] = {"runtime_env": env, "include_dashboard": False, "log_to_driver": False,
                              "configure_logging": False}
        if self.address is None and self.workers:
            kw["num_cpus"] = max(1, int(round(self.workers * self.cpus)))
        if self.address is None:  # a Ray of our own keeps Ray's default (token authentication on) without its
            import logging  # warning, printed on every run; Ray's own logging stays unconfigured (as above)

            logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
        try:
            ray.init(address=self.address, **kw)
        except Exception as exc:  # noqa: BLE001 - Ray's own reason, in one line
            raise BakeoffError(f"execution.address: cannot start or join Ray at {self.address or 'a local Ray'}: "
                               f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None
        self._started = True
        return ray

    def execute(self, ctx: StudyContext, store: StudyStore, runs: list[RunSpec],
                progress: Progress | None = None) -> None:
        self.execute_many([(ctx, store, runs)], progress)

    def execute_many(self, batches: list[Batch], progress: Progress | None = None) -> None:
        """Every batch's runs as tasks of one Ray pool (a suite's datasets fill the workers together)."""
        todos = [(ctx, store, not_done(store, runs, progress)) for ctx, store, runs in batches]
        if not any(todo for _, _, todo in todos):
            return
        self._started = False
        ray = self._init()
        try:
            from ray.util.queue import Queue

            queue = Queue() if progress else None
            task = ray.remote(_remote_run).options(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0)
            threads = self.threads or max(1, int(self.cpus))
            pending: dict[Any, tuple[StudyStore, RunSpec]] = {}
            by_key: dict[tuple[int, str], RunSpec] = {}
            for b, (ctx, store, todo) in enumerate(todos):
                if not todo:
                    continue
                config = ctx.config.model_dump(mode="json")
                data_ref = ray.put(ctx.data)
                for run in todo:
                    pending[task.remote(config, data_ref, str(store.root), run, threads, queue, b)] = (store, run)
                    by_key[(b, run.key)] = run
                    if progress:
                        progress(Started(run))
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                while queue is not None and not queue.empty():
                    b, key, epoch, epochs, metrics = queue.get_nowait()
                    progress(EpochDone(by_key[(b, key)], epoch, epochs, metrics))
                for ref in done:
                    store, run = pending.pop(ref)
                    try:
                        info = ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - a worker that died: the run is recorded failed
                        full = _storage_full_cause(exc)
                        if full is not None:  # every run in flight would meet it too: stop them, say it once
                            for other in pending:
                                ray.cancel(other, force=True)
                            raise full from None
                        info = {**(store.run_info(run) or {}), "status": "failed",
                                "error": f"the Ray worker running it failed: {type(exc).__name__}: "
                                         f"{' '.join(str(exc).split())[:300]}"}
                        store.write_run(run, info)
                    if progress:
                        progress(Finished(run, info))
        finally:
            if self._started:
                ray.shutdown()


def execute_all(executor: Executor, batches: list[Batch], progress: Progress | None = None) -> None:
    """Every batch (a study's context, store and runs; a suite has one per dataset) through one executor:
    together where the executor runs several at once (``execute_many``: Ray fills its workers from every
    batch, SLURM submits every job before it waits), else one batch after another."""
    many = getattr(executor, "execute_many", None)
    if many is not None:
        many(batches, progress)
        return
    for ctx, store, runs in batches:
        executor.execute(ctx, store, runs, progress)


@register_executor("local", doc="this machine: one run after another, or execution.workers runs at once (Ray)")
def _local(execution: Any, detach: bool) -> Executor:
    if execution.workers == 1:
        return LocalExecutor()
    return RayExecutor(None, execution.workers, execution.cpus_per_run, execution.gpus_per_run,
                       execution.threads_per_run)


@register_executor("ray", doc="a Ray cluster at execution.address (or a local Ray)",
                   trains_here=lambda execution: not execution.address)
def _ray(execution: Any, detach: bool) -> Executor:
    return RayExecutor(execution.address, execution.workers if execution.workers > 1 else None,
                       execution.cpus_per_run, execution.gpus_per_run, execution.threads_per_run)


def _slurm_queue(root: Any) -> tuple[dict[str, str], dict[str, str] | None]:
    from bakeoff.runs.slurm import jobs_of, squeue_states  # (subprocess and submitit only when asked)

    jobs = jobs_of(root)
    return jobs, (squeue_states(list(jobs.values())) if jobs else None)


@register_executor("slurm", doc="a SLURM job array (submitit)", detaches=True, multi_node=True,
                   trains_here=lambda execution: False, queue=_slurm_queue, job_word="SLURM job")
def _slurm(execution: Any, detach: bool) -> Executor:
    from bakeoff.runs.slurm import SlurmExecutor

    return SlurmExecutor(execution, detach=detach)


def executor_for(execution: Any, detach: bool = False) -> Executor:
    """The executor ``execution`` (the study's ``execution:`` section) names; ``detach``: submit, don't wait."""
    return executor_spec(execution.backend).make(execution, detach)
