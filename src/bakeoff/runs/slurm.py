"""The SLURM executor, through submitit: one job array per study (``array_parallelism`` runs in flight),
each array task one run, executed on the node from the study directory alone (the resolved study, the
plan's ``RunSpec`` and the data read from ``data.source``).

A job that is pre-empted or reaches its time limit receives SLURM's signal; submitit then requeues it
(``Checkpointable``) and the requeued job resumes its run from ``checkpoints/last.ckpt`` (see
``train.loop``). The driver waits by reading the runs' ``run.json`` files, not SLURM's accounting
(``sacct`` needs slurmdbd, which many clusters and test machines lack); ``squeue`` only tells it whether a
job still exists. ``bakeoff run --detach`` submits and returns; ``bakeoff status DIR`` and
``bakeoff report DIR`` work later from any machine that sees the directory."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from bakeoff.errors import BakeoffError, StorageFull, storage_full, storage_full_error
from bakeoff.runs.events import Finished, Progress, Queued, Started
from bakeoff.runs.spec import RunSpec
from bakeoff.runs.store import DONE, FAILED, StudyStore
from bakeoff.utils import read_json, write_json

SLURM_DIR = "slurm"  # DIR/slurm: submitit's folder (scripts, logs, pickles) and jobs.json
JOBS_FILE = "jobs.json"  # run key -> SLURM job id
STORAGE_FULL = "bakeoff:storage-full"  # the comment of a job that stopped for a full disk or quota

try:  # submitit is the optional extra bakeoff[slurm]; without it the class below is never used
    from submitit.helpers import Checkpointable
except ImportError:  # pragma: no cover
    Checkpointable = object  # type: ignore[misc,assignment]


class RunJob(Checkpointable):  # type: ignore[misc]
    """One run as a SLURM job. Requeued as it is after a pre-emption or time-out (submitit's
    ``Checkpointable``); the run itself resumes from its last epoch's checkpoint."""

    def __init__(self, out: str, run: RunSpec, threads: int | None) -> None:
        self.out, self.run, self.threads = out, run, threads

    def __call__(self) -> dict[str, Any]:
        from bakeoff.runs.backends import _set_threads
        from bakeoff.runs.context import StudyContext
        from bakeoff.runs.runner import execute_run, train_as_rank
        from bakeoff.train.loop import LAUNCHED_ENV, task_rank

        _set_threads(self.threads)
        if int(os.environ.get("SLURM_NTASKS", "1")) > 1:  # a multi-device run: each task is one DDP process
            os.environ[LAUNCHED_ENV] = "slurm"
        try:
            store = StudyStore(self.out)
            if store.is_done(self.run):
                return store.run_info(self.run) or {}
            ctx = StudyContext(store.saved_study())
            ctx.use_cache(store.root)  # the decoded images the driver left in the study's cache
            if task_rank() != 0:  # trains beside the first task, which alone writes the run's files
                train_as_rank(ctx, self.run)
                return {}
            return execute_run(ctx, store, self.run)
        except Exception as exc:
            if isinstance(exc, StorageFull) or storage_full(exc):  # the log and result may not be written
                mark_job(STORAGE_FULL)
            raise


def jobs_of(root: Path) -> dict[str, str]:
    path = Path(root) / SLURM_DIR / JOBS_FILE
    return read_json(path) if path.is_file() else {}


def mark_job(text: str) -> None:
    """Set this SLURM job's comment (the job's own user may): a word to the driver that needs no disk, where
    the disk is what failed. Best effort: outside SLURM, or where ``scontrol`` refuses, nothing happens."""
    env = os.environ
    job = (f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}" if "SLURM_ARRAY_TASK_ID" in env
           else env.get("SLURM_JOB_ID"))
    if job:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(["scontrol", "update", f"JobId={job}", f"Comment={text}"], capture_output=True, timeout=30)


def job_comment(job: str) -> str:
    """A job's comment while SLURM still knows it (``MinJobAge`` after it ended: 300 s by default)."""
    try:
        out = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    found = re.search(r"\bComment=(.*?)(?= \w+=|$)", out.stdout.strip())
    return found.group(1) if found and found.group(1) != "(null)" else ""


def squeue_states(job_ids: list[str]) -> dict[str, str] | None:
    """State of each job SLURM still knows (PENDING, RUNNING, ...); None when squeue is unavailable or the
    controller did not answer (busy, restarting: "Unable to contact slurm controller"), which says nothing about
    the jobs. Taken as an empty queue, such a failure marked every waiting run failed 30 s later while its job was
    still pending. squeue also fails when none of the ids is known any more ("Invalid job id specified"): those
    jobs are gone."""
    if not job_ids:
        return {}
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T", "-j", ",".join(job_ids)], capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return {} if "invalid job id" in out.stderr.lower() else None
    states = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2:
            states[parts[0]] = parts[1]
    return states


class SlurmExecutor:
    """``execution.backend: slurm``: submit every run not done as one job array, then wait (or not)."""

    def __init__(self, execution: Any, detach: bool = False, poll_s: float = 2.0) -> None:
        self.execution, self.detach, self.poll_s = execution, detach, poll_s

    def _executor(self, folder: Path, nodes: int = 1, devices: int = 1) -> Any:
        """submitit's executor for runs on ``nodes`` nodes x ``devices`` devices each: a multi-device run is
        one job of that many tasks (one DDP process each, started by SLURM on every node, Lightning's
        ``SLURMEnvironment`` giving their ranks), with ``devices`` GPUs per node when runs use GPUs."""
        try:
            import submitit
        except ImportError:
            raise BakeoffError("execution.backend: slurm needs submitit; expected pip install 'bakeoff[slurm]'") from None
        ex, sl = self.execution, self.execution.slurm
        executor = submitit.AutoExecutor(folder=folder / "%j", cluster="slurm", slurm_max_num_timeout=sl.max_requeues)
        params: dict[str, Any] = {"timeout_min": sl.time_min, "cpus_per_task": max(1, int(round(ex.cpus_per_run))),
                                  "nodes": nodes, "tasks_per_node": devices,
                                  "slurm_array_parallelism": sl.array_parallelism, "name": "bakeoff",
                                  "slurm_setup": list(sl.setup), "slurm_additional_parameters": dict(sl.sbatch)}
        if ex.gpus_per_run:
            params["gpus_per_node"] = max(1, int(round(ex.gpus_per_run))) * devices
        if sl.partition:
            params["slurm_partition"] = sl.partition
        if sl.account:
            params["slurm_account"] = sl.account
        if sl.mem_gb:
            params["mem_gb"] = sl.mem_gb
        executor.update_parameters(**params)
        return executor

    def execute(self, ctx: Any, store: StudyStore, runs: list[RunSpec], progress: Progress | None = None) -> None:
        self.execute_many([(ctx, store, runs)], progress)

    def execute_many(self, batches: list[tuple[Any, StudyStore, list[RunSpec]]],
                     progress: Progress | None = None) -> None:
        """Every batch's jobs submitted first (a suite's datasets queue together), then waited for in turn."""
        submitted = [(store, self._submit(ctx, store, runs, progress)) for ctx, store, runs in batches]
        if self.detach:
            return
        for store, todo in submitted:
            if todo:
                self.wait(store, todo, progress)

    def _submit(self, ctx: Any, store: StudyStore, runs: list[RunSpec], progress: Progress | None) -> list[RunSpec]:
        """Submit the runs not done (a run whose job is still queued or running keeps it); the runs to wait for."""
        if ctx._data is not None:
            raise BakeoffError("execution.backend: slurm jobs read the data from data.source on the cluster's "
                               "nodes; data given in Python cannot travel there. Save it (an .npz) and name it "
                               "in data.source")
        from bakeoff.runs.backends import not_done

        todo = not_done(store, runs, progress)
        if not todo:
            return []
        folder = store.root / SLURM_DIR
        known = jobs_of(store.root)
        alive = squeue_states([known[r.key] for r in todo if r.key in known]) or {}
        submit = [r for r in todo if known.get(r.key) not in alive]  # a run whose job still exists waits for it
        if submit:
            from bakeoff.train.loop import world_size

            shapes: dict[tuple[int, int], list[RunSpec]] = {}  # (nodes, devices per node) -> its runs' job array
            for r in submit:
                p = r.resolved_protocol()
                shapes.setdefault((p.num_nodes, world_size(p) // p.num_nodes), []).append(r)
            threads = self.execution.threads_per_run or max(1, int(round(self.execution.cpus_per_run)))
            for (nodes, devices), group in shapes.items():
                executor = self._executor(folder, nodes, devices)
                try:
                    with executor.batch():
                        jobs = [executor.submit(RunJob(str(store.root), r, threads)) for r in group]
                except Exception as exc:  # noqa: BLE001 - sbatch's own complaint, in one line
                    raise BakeoffError(f"execution.slurm: submitting the jobs failed: {type(exc).__name__}: "
                                       f"{' '.join(str(exc).split())[:400]}") from None
                for r, job in zip(group, jobs):
                    known[r.key] = str(job.job_id)
                write_json(folder / JOBS_FILE, known)
        for r in todo:
            if progress:
                progress(Queued(r, str(known[r.key])))
        return todo

    def wait(self, store: StudyStore, runs: list[RunSpec], progress: Progress | None = None) -> None:
        """Until every run is done or failed; a job that left the queue without a result is a failed run."""
        known = jobs_of(store.root)
        left = {r.key: r for r in runs}
        started: set[str] = set()
        gone_since: dict[str, float] = {}
        while left:
            states = squeue_states([known[k] for k in left if k in known])
            for key, run in list(left.items()):
                info = store.run_info(run) or {}
                status = info.get("status") if info.get("hash") == run.hash else None
                if status == "running" and key not in started:
                    started.add(key)
                    if progress:
                        progress(Started(run))
                if status in (DONE, FAILED):
                    del left[key]
                    if progress:
                        progress(Finished(run, info))
                    continue
                job = known.get(key)
                if states is not None and job not in states:  # not queued, not running, no result (yet)
                    if job and job_comment(job).startswith(STORAGE_FULL):  # not the run's failure: the study
                        raise storage_full_error(None, f"writing run {key} in SLURM job {job}",  # stops, as
                                                 where=store.run_dir(run))  # locally (other jobs meet it too)
                    first = gone_since.setdefault(key, time.monotonic())
                    if time.monotonic() - first > 30:  # the result file had time to appear
                        info = {**info, "contender": run.contender, "seed": run.seed, "fold": run.fold,
                                "run_id": run.run_id, "hash": run.hash, "status": FAILED,
                                "error": f"SLURM job {job} ended without finishing the run; see "
                                         f"{store.root / SLURM_DIR / str(job)}"}
                        store.write_run(run, info)
                else:
                    gone_since.pop(key, None)
            if left:
                time.sleep(self.poll_s)
