"""What ``bakeoff status`` says about each planned run, from the study directory alone (no torch):
its run.json, progress.json and metrics.json, the job ids a job-submitting executor recorded (asked through
its registered ``queue``: the slurm executor's squeue), and whether the process that was running it still
exists."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from bakeoff.runs.backends import executors
from bakeoff.runs.spec import RunSpec
from bakeoff.runs.store import METRICS_FILE, PROGRESS_FILE, StudyStore
from bakeoff.utils import read_json


@dataclass
class RunState:
    state: str  # pending | queued | running | interrupted | done | failed | stale
    progress: str = ""
    detail: str = ""
    score: float | None = None
    wall_time_s: float | None = None
    eta_s: float | None = None  # a running run's own estimate of the time it has left


def _alive(info: dict, job: str | None, queue: dict[str, str] | None) -> bool | None:
    """Whether the process running a run still exists: its job in the scheduler's queue, or its PID on
    this host; None when this machine cannot tell (another host, no scheduler to ask)."""
    if job is not None and queue is not None:
        return job in queue
    if info.get("host") == socket.gethostname() and info.get("pid"):
        try:
            os.kill(int(info["pid"]), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return None


def _eta(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def run_states(store: StudyStore, runs: list[RunSpec]) -> list[RunState]:
    jobs: dict[str, str] = {}
    queue: dict[str, str] | None = None
    word = "job"
    for spec in executors().values():  # the executor whose jobs this study directory records
        if spec.queue is not None:
            jobs, queue = spec.queue(store.root)
            if jobs:
                word = spec.job_word
                break
    study_primary = store.saved_study().evaluation.primary
    out = []
    for r in runs:
        info = store.run_info(r) or {}
        job = jobs.get(r.key)
        state = info.get("status", "pending")
        if info and info.get("hash") != r.hash:
            state = "stale" if state == "done" else "pending"
        st = RunState(state, wall_time_s=info.get("wall_time_s"))
        run_dir = store.run_dir(r)
        if state == "pending" and job is not None and (queue is None or job in queue):
            st.state, st.detail = "queued", f"{word} {job}" + (f" ({queue[job].lower()})" if queue else "")
        elif state == "running":
            alive = _alive(info, job, queue)
            prog = read_json(run_dir / PROGRESS_FILE) if (run_dir / PROGRESS_FILE).is_file() else None
            if prog:
                st.progress = f"epoch {prog['epoch']}/{prog['epochs']}"
                if alive is not False:
                    st.detail = f"ETA {_eta(prog['eta_s'])}" if prog["epoch"] < prog["epochs"] else "predicting"
                    st.eta_s = float(prog.get("eta_s") or 0.0)
            if alive is False:
                st.state = "interrupted"
                st.detail = ("its process is gone; the same run command resumes it from its last epoch"
                             if (run_dir / "checkpoints" / "last.ckpt").is_file() else
                             "its process is gone; the same run command runs it again")
            elif job is not None:
                st.detail = (st.detail + f"; {word} {job}").lstrip("; ")
        elif state == "done":
            st.progress = f"{info.get('epochs_trained', '')} epochs"
            metrics = run_dir / METRICS_FILE
            if metrics.is_file():
                value = read_json(metrics).get("test", {}).get(study_primary)
                st.score = float(value) if isinstance(value, int | float) else None
        elif state == "failed":
            st.detail = " ".join(str(info.get("error", "")).split())[:160]
        out.append(st)
    return out


def run_time_guess(contender: str, means: dict[str, float], costs: dict[str, float | None]) -> float:
    """How long a run of ``contender`` should take: its contender's mean time (``means``, non-empty); before
    one is known, each timed contender's mean scaled by the runs' costs (``RunSpec.cost``: forward time per
    input x epochs), averaged over the timed contenders whose cost is known; else every contender's mean time.
    Scaling matters when a small network's runs come first: a big one's are not guessed at its pace."""
    from statistics import fmean

    if contender in means:
        return means[contender]
    own = costs.get(contender)
    scaled = [t * own / costs[c] for c, t in means.items() if own and costs.get(c)]
    return fmean(scaled) if scaled else fmean(means.values())


def contender_costs(runs: list[RunSpec]) -> dict[str, float | None]:
    return {r.contender: r.cost() for r in runs}


def study_eta(runs: list[RunSpec], states: list[RunState]) -> float | None:
    """Seconds until every run is done, one run at a time: a running run's own estimate, and each run
    still to go at its contender's mean time so far (``run_time_guess`` before one of its own is done);
    None before any run has finished."""
    from statistics import fmean

    times: dict[str, list[float]] = {}
    for r, st in zip(runs, states):
        if st.state == "done" and st.wall_time_s:
            times.setdefault(r.contender, []).append(st.wall_time_s)
    if not times:
        return None
    means = {c: fmean(v) for c, v in times.items()}
    costs = contender_costs(runs)
    left = 0.0
    for r, st in zip(runs, states):
        if st.state == "running":
            left += st.eta_s or 0.0
        elif st.state in ("pending", "queued", "interrupted"):
            left += run_time_guess(r.contender, means, costs)
    return left
