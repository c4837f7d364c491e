"""The slurm executor on a real single-node SLURM cluster (scripts/slurm_local.sh: Debian's slurm-wlm and
munge, started here as root): a study submitted with --detach runs as a job array; one job, signalled as
a pre-emption mid-training, is requeued by submitit and resumes from its last epoch; the results equal a
local run's, run for run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import computed_columns, write_study

ROOT = Path(__file__).resolve().parents[1]


def _bakeoff(*args):
    return subprocess.run([sys.executable, "-m", "bakeoff.cli", *map(str, args)], capture_output=True, text=True,
                          env=dict(os.environ, COLUMNS="200"), timeout=600)


def test_a_study_on_slurm_detached_with_a_preempted_job(slurm, tmp_path, tiny_raw):
    tiny_raw["data"]["params"]["n"] = 1200
    tiny_raw["protocol"].update(seeds=[0, 1], epochs=10)
    tiny_raw["evaluation"].update(speed=False, n_boot=200)
    tiny_raw["execution"] = {"backend": "slurm", "cpus_per_run": 1, "threads_per_run": 1, "checkpoint_every_s": 0,
                             "slurm": {"time_min": 20, "array_parallelism": 2}}
    study = write_study(tmp_path / "s.yaml", tiny_raw)
    out = tmp_path / "slurm"
    proc = _bakeoff("run", study, "--out", out, "--detach")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "submitted 4 run(s) as SLURM job(s)" in proc.stdout
    jobs = json.loads((out / "slurm" / "jobs.json").read_text())
    assert len(jobs) == 4

    # pre-empt the first run's job once it has finished an epoch: SLURM's signal, as a scheduler sends it
    target = out / "runs" / "se" / "seed0-fold0"  # SE-ResNet runs take seconds an epoch here
    deadline = time.time() + 300
    while time.time() < deadline:
        prog = target / "progress.json"
        if prog.is_file() and 1 <= json.loads(prog.read_text())["epoch"] < 8:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the first run never reported an epoch: " + _bakeoff("status", out).stdout)
    subprocess.run(["scancel", "--signal=USR2", jobs["se/seed0-fold0"]], check=True, timeout=60)
    status = _bakeoff("status", out)
    assert status.returncode == 0 and "SLURM job" in status.stdout, status.stdout

    deadline = time.time() + 600
    while time.time() < deadline:
        infos = [json.loads(p.read_text()) for p in out.glob("runs/*/*/run.json")]
        if len(infos) == 4 and all(i["status"] in ("done", "failed") for i in infos):
            break
        time.sleep(1)
    else:
        pytest.fail("the jobs did not finish: " + _bakeoff("status", out).stdout)
    info = json.loads((target / "run.json").read_text())
    assert info["status"] == "done", info.get("error")
    assert info["training"]["resumed_after_epochs"] >= 1  # requeued, and continued from its last epoch
    status = _bakeoff("status", out)
    assert "4 done" in status.stdout, status.stdout
    report = _bakeoff("report", out)
    assert report.returncode == 0, report.stderr[-3000:]

    tiny_raw["execution"] = {"threads_per_run": 1}
    local = tmp_path / "local"
    proc = _bakeoff("run", write_study(tmp_path / "l.yaml", tiny_raw), "--out", local)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = (pd.read_csv(d / "results.csv") for d in (out, local))
    pd.testing.assert_frame_equal(computed_columns(a), computed_columns(b))


def test_a_ddp_run_trains_in_processes_slurm_starts_with_the_spawned_runs_results(slurm, tmp_path, tiny_raw):
    """protocol.devices: 2 on the slurm backend: one job of two tasks (what num_nodes x devices becomes on a
    cluster), each a DDP process whose rank Lightning's SLURMEnvironment reads; the first writes the run.
    The run equals the same study's local run (two processes spawned on this machine), bit for bit (CPU)."""
    tiny_raw["protocol"].update(seeds=[0], epochs=2)
    tiny_raw["evaluation"].update(speed=False, n_boot=200)
    tiny_raw["contenders"]["se"]["protocol"] = {"devices": 2, "accelerator": "cpu"}
    tiny_raw["execution"] = {"backend": "slurm", "cpus_per_run": 1, "threads_per_run": 1,
                             "slurm": {"time_min": 20, "array_parallelism": 2}}
    out = tmp_path / "slurm"
    proc = _bakeoff("run", write_study(tmp_path / "s.yaml", tiny_raw), "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    info = json.loads((out / "runs" / "se" / "seed0-fold0" / "run.json").read_text())
    assert info["training"]["strategy"] == "ddp" and info["training"]["world_size"] == 2, info["training"]
    job = json.loads((out / "slurm" / "jobs.json").read_text())["se/seed0-fold0"]
    sbatch = next((out / "slurm" / job).glob("*submission.sh")).read_text()
    assert "--ntasks-per-node=2" in sbatch and "--nodes=1" in sbatch, sbatch
    logs = [p.read_text() for p in (out / "slurm" / job).glob("*_1_log.out")]
    assert logs, "the second task left no log"  # it ran, as rank 1

    tiny_raw["execution"] = {"threads_per_run": 1}
    local = tmp_path / "local"
    proc = _bakeoff("run", write_study(tmp_path / "l.yaml", tiny_raw), "--out", local)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((local / "runs" / "se" / "seed0-fold0" / "run.json").read_text())["training"]["strategy"] \
        == "ddp_spawn"
    a, b = (pd.read_csv(d / "results.csv") for d in (out, local))
    pd.testing.assert_frame_equal(computed_columns(a), computed_columns(b))


def test_a_suite_on_slurm_queues_every_datasets_jobs_at_once(slurm, tmp_path):
    """A suite with --detach submits the jobs of every dataset before returning (one queue for the suite);
    the same command without --detach then waits for those jobs (none submitted twice) and answers."""
    import yaml

    raw = yaml.safe_load((ROOT / "examples" / "spots_suite.yaml").read_text())
    raw["datasets"] = {k: v for k, v in list(raw["datasets"].items())[:2]}
    for entry in raw["datasets"].values():
        entry["data"]["params"].update(n=120)
    raw["protocol"].update(seeds=[0], epochs=1)
    raw["contenders"]["se_resnet3d"]["params"]["base_channels"] = 4
    raw["execution"] = {"backend": "slurm", "cpus_per_run": 1, "threads_per_run": 1,
                        "slurm": {"time_min": 20, "array_parallelism": 4}}
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = tmp_path / "out"
    proc = _bakeoff("run", suite, "--out", out, "--detach")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "submitted every dataset's runs" in proc.stdout
    jobs = {name: json.loads((out / "datasets" / name / "slurm" / "jobs.json").read_text()) for name in raw["datasets"]}
    assert all(len(j) == 2 for j in jobs.values()), jobs
    status = _bakeoff("status", out)
    assert status.returncode == 0 and "snr2" in status.stdout and "snr3" in status.stdout, status.stdout
    proc = _bakeoff("run", suite, "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name, j in jobs.items():  # waited for the same jobs, none submitted again
        assert json.loads((out / "datasets" / name / "slurm" / "jobs.json").read_text()) == j
    result = json.loads((out / "suite.json").read_text())
    assert result["cost"]["runs"] == 4 and "Across 2 datasets" in proc.stdout


def test_squeue_that_cannot_reach_the_controller_says_nothing_about_the_jobs(tmp_path, monkeypatch):
    """A controller that does not answer (busy, restarting) is not an empty queue: the waiting runs stay
    waiting (a run was once marked failed while its job was pending). squeue's words and exit status are
    those of Debian's slurm-wlm, seen with slurmctld stopped; a stand-in squeue says them here."""
    from bakeoff.runs.slurm import squeue_states

    fake = tmp_path / "bin" / "squeue"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)' >&2\n"
                    "exit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    assert squeue_states(["12"]) is None


def test_squeue_of_jobs_slurm_no_longer_knows_is_an_empty_queue(slurm):
    """The real squeue fails ("Invalid job id specified") when no id it is given is known any more: those
    jobs left the queue, so a run without a result is failed after the grace period, as before."""
    from bakeoff.runs.slurm import squeue_states

    proc = subprocess.run(["squeue", "-h", "-j", "999999"], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "invalid job id" in proc.stderr.lower(), proc.stderr
    assert squeue_states(["999999"]) == {}


def test_a_slurm_study_on_image_files_decodes_them_once(slurm, tmp_path):
    """The driver decodes the PNGs into DIR/cache before submitting; each job opens that cache."""
    from tests.images.pngs import png_study, write_pngs

    raw = png_study(write_pngs(tmp_path / "d", 120, size=12, signal=True))
    raw["execution"] = {"backend": "slurm", "cpus_per_run": 1, "threads_per_run": 1,
                        "slurm": {"time_min": 20, "array_parallelism": 2}}
    out = tmp_path / "slurm"
    proc = _bakeoff("run", write_study(tmp_path / "s.yaml", raw), "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    infos = [json.loads(p.read_text()) for p in out.glob("runs/*/*/run.json")]
    assert len(infos) == 2 and all(i["status"] == "done" for i in infos), [i.get("error") for i in infos]
    builds = (out / "cache" / "builds.log").read_text().splitlines()
    assert len(builds) == 1
    assert {i["pid"] for i in infos}.isdisjoint({json.loads(builds[0])["pid"]})  # jobs read, the driver decoded
