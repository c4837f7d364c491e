"""Runs resume mid-training: a study killed with SIGKILL (mid-epoch, while its resume checkpoint is
written, while predictions are saved) finishes on rerun, retrains no finished run, continues the
interrupted one from its last epoch, and gives the results of an uninterrupted study, bit for bit (CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import computed_columns, write_study


def _run(study, out, kill_at=None):
    env = dict(os.environ, COLUMNS="200")
    env.pop("BAKEOFF_KILL_AT", None)
    if kill_at:
        env["BAKEOFF_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, "-m", "bakeoff.cli", "run", str(study), "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=600)


def _results(out):
    return computed_columns(pd.read_csv(out / "results.csv"))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from tests.conftest import TINY_STUDY

    root = tmp_path_factory.mktemp("resume")
    raw = json.loads(json.dumps(TINY_STUDY))
    raw["protocol"].update(epochs=3, schedule={"name": "cosine"})  # a scheduler's state must survive too
    raw["execution"] = {"checkpoint_every_s": 0}  # a resume checkpoint at every epoch end
    raw["evaluation"].update(speed=False, n_boot=200)
    path = write_study(root / "tiny.yaml", raw)
    ref = root / "uninterrupted"
    proc = _run(path, ref)
    assert proc.returncode == 0, proc.stderr
    return path, ref


# 120 training samples, batch 32: 4 steps per epoch, 3 epochs per run; runs: cnn seed 0, 1, then se 0, 1
@pytest.mark.parametrize("kill_at, run", [
    ("step:19", "cnn/seed1-fold0"),  # the second run, mid-way through its second epoch
    ("write:last.ckpt:5", "cnn/seed1-fold0"),  # the second run's second resume checkpoint, half-written
    ("write:predictions.npz:2", "cnn/seed1-fold0"),  # the second run's predictions, half-written
])
def test_a_killed_study_resumes_to_the_same_results(study, tmp_path, kill_at, run):
    path, ref = study
    out = tmp_path / "out"
    proc = _run(path, out, kill_at)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-2000:])
    first = out / "runs" / "cnn" / "seed0-fold0" / "run.json"
    assert json.loads(first.read_text())["status"] == "done"
    before = first.stat().st_mtime_ns
    killed = json.loads((out / "runs" / run / "run.json").read_text())
    assert killed["status"] == "running"  # what the killed process left
    status = subprocess.run([sys.executable, "-m", "bakeoff.cli", "status", str(out)], capture_output=True,
                            text=True, env=dict(os.environ, COLUMNS="250"), timeout=120)
    assert "interrupted" in status.stdout and "resumes it from its last epoch" in status.stdout, status.stdout

    proc = _run(path, out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert first.stat().st_mtime_ns == before  # the finished run was not run again
    info = json.loads((out / "runs" / run / "run.json").read_text())
    done_before = {"step:19": 1, "write:last.ckpt:5": 1, "write:predictions.npz:2": 3}[kill_at]
    assert info["training"]["resumed_after_epochs"] == done_before  # continued, not restarted
    assert not (out / "runs" / run / "checkpoints" / "last.ckpt").exists()  # a done run keeps its weights only
    pd.testing.assert_frame_equal(_results(out), _results(ref))
    # the training log reads as if uninterrupted
    log, ref_log = (pd.read_csv(d / "runs" / run / "logs" / "csv" / "metrics.csv") for d in (out, ref))
    pd.testing.assert_frame_equal(log, ref_log)


def test_a_diverging_contender_fails_with_its_step_while_the_others_finish(tmp_path):
    from tests.conftest import TINY_STUDY

    raw = json.loads(json.dumps(TINY_STUDY))
    raw["protocol"].update(seeds=[0], epochs=2)
    raw["evaluation"].update(speed=False, n_boot=200)
    raw["contenders"]["se"]["protocol"] = {"optimizer": {"name": "sgd", "lr": 1e12}}
    out = tmp_path / "out"
    proc = _run(write_study(tmp_path / "s.yaml", raw), out)
    assert proc.returncode == 1, proc.stderr[-2000:]
    info = json.loads((out / "runs" / "se" / "seed0-fold0" / "run.json").read_text())
    assert info["status"] == "failed"
    assert "Diverged: the training loss became NaN or infinite at step" in info["error"]
    assert json.loads((out / "runs" / "cnn" / "seed0-fold0" / "run.json").read_text())["status"] == "done"
    assert "1 run(s) failed" in proc.stderr and "failed: se seed 0 fold 0: Diverged" in proc.stdout
    df = pd.read_csv(out / "results.csv").set_index("contender")
    assert df.loc["se", "status"] == "failed" and "step" in df.loc["se", "error"]


def test_with_the_default_interval_a_killed_short_run_restarts_to_the_same_results(study, tmp_path):
    """execution.checkpoint_every_s (default 60 s): runs whose epochs take a fraction of a second write no
    resume checkpoint (a full-state write per epoch cost resnet18 0.5 s an epoch); killed, such a run
    trains again from the start, to the same results."""
    import yaml

    path, ref = study
    raw = yaml.safe_load(path.read_text())
    del raw["execution"]
    default = write_study(tmp_path / "default.yaml", raw)
    out = tmp_path / "out"
    proc = _run(default, out, "step:19")
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    run = out / "runs" / "cnn" / "seed1-fold0"
    assert not (run / "checkpoints" / "last.ckpt").exists()
    proc = _run(default, out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "resumed_after_epochs" not in json.loads((run / "run.json").read_text())["training"]
    pd.testing.assert_frame_equal(_results(out), _results(ref))


def test_changed_data_keeps_the_finished_runs_aside_and_clean_removes_them(tmp_path):
    """The same study file over data that changed: the finished runs are not replaced silently but kept
    in DIR/stale/<old hash>/; the report is the current runs'; bakeoff clean lists and deletes the stale."""
    import numpy as np

    from tests.conftest import TINY_STUDY

    rng = np.random.default_rng(0)
    npz = tmp_path / "d.npz"
    np.savez(npz, X=rng.normal(size=(80, 9, 11, 11)).astype(np.float32), y=np.arange(80) % 2)
    raw = json.loads(json.dumps(TINY_STUDY))
    raw["data"] = {"source": f"npz:{npz}", "split": {"kind": "holdout", "val_fraction": 0.25, "test_fraction": 0.25}}
    raw["protocol"].update(seeds=[0], epochs=1)
    raw["contenders"] = {"cnn": raw["contenders"]["cnn"]}
    raw["evaluation"].update(speed=False, n_boot=200)
    study, out = write_study(tmp_path / "s.yaml", raw), tmp_path / "out"
    assert _run(study, out).returncode == 0
    first = json.loads((out / "runs" / "cnn" / "seed0-fold0" / "run.json").read_text())
    old = (out / "runs" / "cnn" / "seed0-fold0" / "predictions.npz").read_bytes()
    np.savez(npz, X=rng.normal(size=(80, 9, 11, 11)).astype(np.float32), y=np.arange(80) % 2)  # new pixels
    assert _run(study, out).returncode == 0
    aside = out / "stale" / first["hash"] / "cnn" / "seed0-fold0"
    assert (aside / "predictions.npz").read_bytes() == old  # the earlier finished run, byte for byte
    now = json.loads((out / "runs" / "cnn" / "seed0-fold0" / "run.json").read_text())
    assert now["hash"] != first["hash"] and len(pd.read_csv(out / "results.csv")) == 1
    listing = subprocess.run([sys.executable, "-m", "bakeoff.cli", "clean", str(out), "--dry-run"],
                             capture_output=True, text=True, timeout=120)
    flat = "".join(listing.stdout.split())
    assert listing.returncode == 0 and "woulddelete" in flat and "".join(str(aside).split()) in flat, listing.stdout
    assert aside.is_dir()
    done = subprocess.run([sys.executable, "-m", "bakeoff.cli", "clean", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "1 run directory deleted" in done.stdout, done.stdout + done.stderr
    assert not aside.exists()
    assert (out / "runs" / "cnn" / "seed0-fold0" / "predictions.npz").is_file()


def test_two_runs_of_one_study_cooperate_and_a_report_reads_the_finished_runs(study, tmp_path):
    """A second `bakeoff run` on a directory a first is running waits for it, then trains nothing the first
    did; `bakeoff report` during the run reports the runs finished so far; the results are the
    uninterrupted study's."""
    import time

    path, ref = study
    out = tmp_path / "out"
    env = dict(os.environ, COLUMNS="200")
    env.pop("BAKEOFF_KILL_AT", None)
    first = subprocess.Popen([sys.executable, "-m", "bakeoff.cli", "run", str(path), "--out", str(out)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 300
    while time.time() < deadline:
        infos = [json.loads(p.read_text()) for p in out.glob("runs/*/*/run.json")]
        if any(i.get("status") == "done" for i in infos):
            break
        time.sleep(0.1)
    second = subprocess.Popen([sys.executable, "-m", "bakeoff.cli", "run", str(path), "--out", str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    report = subprocess.run([sys.executable, "-m", "bakeoff.cli", "report", str(out), "--no-plots"], capture_output=True,
                            text=True, env=env, timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    partial = pd.read_csv(out / "results.csv")
    assert (partial["status"] == "done").sum() >= 1
    out1, err1 = first.communicate(timeout=600)
    out2, err2 = second.communicate(timeout=600)
    assert first.returncode == 0, err1[-2000:]
    assert second.returncode == 0, err2[-2000:] + out2[-2000:]
    # it waited on the lock, or (on a loaded machine) took it after the first had finished; either way it
    # trained nothing (below)
    pids = {json.loads(p.read_text())["pid"] for p in out.glob("runs/*/*/run.json")}
    assert pids == {first.pid}  # the second process trained nothing
    pd.testing.assert_frame_equal(_results(out), _results(ref))


def test_a_damaged_resume_checkpoint_restarts_the_run_cleanly(study, tmp_path):
    """Killed after an epoch's checkpoint, which is then damaged on disk: the rerun cannot read it, says so
    in run.json, trains the run from the start, and ends with the uninterrupted results; the kept weights'
    SHA-256 is in run.json."""
    import hashlib

    path, ref = study
    out = tmp_path / "out"
    proc = _run(path, out, "epoch:2")  # the first run's second epoch checkpoint written, then killed
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    last = out / "runs" / "cnn" / "seed0-fold0" / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])  # cut short, as a full disk or a bad copy leaves it
    proc = _run(path, out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads((out / "runs" / "cnn" / "seed0-fold0" / "run.json").read_text())
    assert "unreadable" in info["training"]["resume_discarded"] and "resumed_after_epochs" not in info["training"]
    pd.testing.assert_frame_equal(_results(out), _results(ref))
    best = out / "runs" / "cnn" / "seed0-fold0" / "checkpoints" / "best.ckpt"
    assert info["checkpoint_sha256"] == hashlib.sha256(best.read_bytes()).hexdigest()


def test_out_of_memory_fails_that_run_with_its_reason_and_keeps_the_batch(tmp_path):
    from tests.conftest import TINY_STUDY

    raw = json.loads(json.dumps(TINY_STUDY))
    raw["protocol"].update(seeds=[0], epochs=1)
    raw["evaluation"].update(speed=False, n_boot=200)
    raw["contenders"]["big"] = {"model": "tests.robustness.oomnet:greedy"}
    out = tmp_path / "out"
    proc = _run(write_study(tmp_path / "s.yaml", raw), out)
    assert proc.returncode == 1, proc.stderr[-2000:]
    info = json.loads((out / "runs" / "big" / "seed0-fold0" / "run.json").read_text())
    assert info["status"] == "failed" and info["error"].startswith("OutOfMemoryError: CUDA out of memory")
    assert "batch size was not changed" in info["error"]
    assert info["protocol"]["batch_size"] == 32
    assert json.loads((out / "runs" / "cnn" / "seed0-fold0" / "run.json").read_text())["status"] == "done"


# One process after another, each killed (SIGKILL) at the next point a study writes or trains: mid-epoch, while
# a resume checkpoint is half-written, after an epoch's checkpoint, while the kept weights, predictions, metrics,
# run.json and progress are written, and while the study's results, comparison and report are aggregated. The
# N of POINT:N counts within that process (which resumes where the previous one was killed).
KILL_LOOP = ["step:3", "write:last.ckpt:2", "epoch:1", "write:best.ckpt", "write:predictions.npz",
             "write:metrics.json", "write:run.json:2", "write:progress.json:2", "step:9", "write:results.csv",
             "write:comparison.json", "write:report.html"]


def test_killed_at_every_write_point_in_turn_the_study_completes_with_the_uninterrupted_results(study, tmp_path):
    from bakeoff.utils import sha256_of

    path, ref = study
    out = tmp_path / "out"
    orphans = 0
    for point in KILL_LOOP:
        proc = _run(path, out, point)
        assert proc.returncode == -signal.SIGKILL, (point, proc.returncode, proc.stderr[-2000:])
        if point.startswith("write:"):  # the half-written file stays under its temporary name, never in place
            name = point.split(":")[1]
            temps = list(out.rglob(f".{name}.*.tmp"))
            assert temps, point
            orphans += len(temps)
            for t in temps:
                assert not (t.parent / name).exists() or (t.parent / name).read_bytes() != t.read_bytes()
        assert not (out / "results.csv").exists() or point in ("write:comparison.json", "write:report.html")
    assert orphans >= 9
    proc = _run(path, out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    pd.testing.assert_frame_equal(_results(out), _results(ref))
    verdicts = [json.loads((d / "comparison.json").read_text())["pairs"] for d in (out, ref)]
    assert json.dumps(verdicts[0], sort_keys=True) == json.dumps(verdicts[1], sort_keys=True)
    assert (out / "report.html").is_file()
    assert not list(out.rglob("*.tmp"))  # the killed processes' half-written files were removed
    for info_path in out.glob("runs/*/*/run.json"):
        info = json.loads(info_path.read_text())
        assert info["status"] == "done"
        assert info["checkpoint_sha256"] == sha256_of(info_path.parent / "checkpoints" / "best.ckpt")
        log, ref_log = (pd.read_csv(d / info_path.parent.relative_to(out) / "logs" / "csv" / "metrics.csv")
                        for d in (out, ref))
        pd.testing.assert_frame_equal(log, ref_log)


def test_a_damaged_kept_checkpoint_is_found_by_its_checksum_and_the_run_trained_again(study, tmp_path):
    """best.ckpt changed after its run finished (a bad copy, bit rot): the rerun compares it with the SHA-256 in
    run.json, says so, trains that run again (and only that one), and ends with the uninterrupted results."""
    import shutil

    from bakeoff.utils import sha256_of

    path, ref = study
    out = tmp_path / "out"
    shutil.copytree(ref, out)
    best = out / "runs" / "se" / "seed1-fold0" / "checkpoints" / "best.ckpt"
    data = bytearray(best.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: the size is unchanged
    best.write_bytes(bytes(data))
    others = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/run.json") if "se/seed1" not in str(p)}
    proc = _run(path, out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    flat = " ".join(proc.stdout.split())
    assert "best.ckpt: its SHA-256 differs from the one its run.json recorded" in flat, proc.stdout[-2000:]
    assert all(p.stat().st_mtime_ns == t for p, t in others.items())  # the intact runs were not trained again
    info = json.loads((best.parent.parent / "run.json").read_text())
    assert info["checkpoint_sha256"] == sha256_of(best)
    pd.testing.assert_frame_equal(_results(out), _results(ref))


def _grow_study(tmp_path, seeds, contenders=("cnn",)):
    from tests.conftest import TINY_STUDY

    raw = json.loads(json.dumps(TINY_STUDY))
    raw["protocol"].update(seeds=seeds, epochs=1)
    raw["contenders"] = {c: raw["contenders"][c] for c in contenders}
    raw["evaluation"].update(speed=False, n_boot=200)
    return write_study(tmp_path / f"s{len(seeds)}{len(contenders)}.yaml", raw)


def test_a_study_grows_in_place_more_seeds_and_a_contender_train_only_the_new_runs(tmp_path):
    """Seeds [0], then [0, 1], then a second contender, in one directory: each finished run is kept as it
    is (not retrained, its files untouched) and the results equal those of the larger study from scratch."""
    out = tmp_path / "grown"
    assert _run(_grow_study(tmp_path, [0]), out).returncode == 0
    first = out / "runs" / "cnn" / "seed0-fold0"
    info0, preds0 = (first / "run.json").read_text(), (first / "predictions.npz").stat().st_mtime_ns
    proc = _run(_grow_study(tmp_path, [0, 1]), out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (first / "run.json").read_text() == info0 and (first / "predictions.npz").stat().st_mtime_ns == preds0
    assert (out / "runs" / "cnn" / "seed1-fold0" / "predictions.npz").is_file()
    proc = _run(_grow_study(tmp_path, [0, 1], ("cnn", "se")), out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (first / "run.json").read_text() == info0
    scratch = tmp_path / "scratch"
    assert _run(_grow_study(tmp_path, [0, 1], ("cnn", "se")), scratch).returncode == 0
    pd.testing.assert_frame_equal(_results(out), _results(scratch))
    grown, fresh = (json.loads((d / "comparison.json").read_text())["pairs"][0] for d in (out, scratch))
    assert grown["difference"] == fresh["difference"] and grown["ci_low"] == fresh["ci_low"]
    # a changed contender under the same name is refused, naming it; nothing is touched
    raw = json.loads(json.dumps(__import__("yaml").safe_load(_grow_study(tmp_path, [0, 1]).read_text())))
    raw["contenders"]["cnn"]["params"] = {"dropout": 0.5}
    proc = _run(write_study(tmp_path / "changed.yaml", raw), out)
    assert proc.returncode == 2 and "contenders.cnn: differs" in proc.stderr, proc.stderr
    assert (first / "run.json").read_text() == info0


def test_runs_finished_when_the_hash_held_the_list_of_seeds_are_recognised_not_retrained(tmp_path):
    """A directory written before studies could grow: its run.json hashes were computed over the whole
    protocol, seeds list included (run_hash as it was called then). Rerun with the same study, and with one
    more seed: the finished run is adopted (hash_before records the old hash), not retrained."""
    from bakeoff.api import Study
    from bakeoff.runs.spec import run_hash

    study = _grow_study(tmp_path, [0])
    out = tmp_path / "old"
    assert _run(study, out).returncode == 0
    path = out / "runs" / "cnn" / "seed0-fold0" / "run.json"
    info = json.loads(path.read_text())
    ctx = Study.from_yaml(study).context
    old = run_hash(data=ctx.data_fingerprint, split=info["split"], contender=ctx.config.contenders["cnn"].identity(),
                   seed=0, task=ctx.config.task, data_cfg=ctx.config.data.identity(),
                   # the whole protocol as it was then: seeds included, no seed_streams (a later, default-off setting)
                   protocol={**ctx.protocol("cnn").run_settings(), "seeds": [0]},
                   evaluation=ctx.config.evaluation.run_settings())
    assert old != info["hash"]
    info["hash"] = old
    path.write_text(json.dumps(info))
    plan = json.loads((out / "plan.json").read_text())
    (out / "plan.json").write_text(json.dumps([{**r, "hash": old} for r in plan]))
    (out / "finished_stamp.json").unlink()
    stamp = path.stat().st_mtime_ns
    proc = _run(_grow_study(tmp_path, [0, 1]), out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    now = json.loads(path.read_text())
    assert now["hash_before"] == old and now["hash"] != old and now["started"] == info["started"]
    assert not (out / "stale").exists() and stamp <= path.stat().st_mtime_ns
    assert len(pd.read_csv(out / "results.csv")) == 2
