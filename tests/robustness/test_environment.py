"""The environment fails under a study, for real: a disk that fills up mid-study (a small tmpfs, mounted for
the test) and an output directory the user may not write to (the CLI run without root's capabilities, so
that file permissions bind it). Each ends with one line naming the file and what to do, exit code 2, no traceback, nothing
already saved damaged; with space freed, the same command completes the study with the results it would
have had.

Both need root (to mount, to drop privileges); where that is not possible they are skipped, saying why."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import TINY_STUDY, write_study
from tests.test_resume import _results


def _run(study: Path, out: Path, *prefix: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="300")
    env.pop("BAKEOFF_KILL_AT", None)
    return subprocess.run([*prefix, sys.executable, "-m", "bakeoff.cli", "run", str(study), "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=600)


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@contextlib.contextmanager
def _tmpfs(size_bytes: int) -> Iterator[Path]:
    where = Path(tempfile.mkdtemp(prefix="bakeoff-tmpfs-"))
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or 'not root'}): a full disk needs one")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)
        shutil.rmtree(where, ignore_errors=True)


@pytest.fixture(scope="module")
def small_study(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("env")
    raw = json.loads(json.dumps(TINY_STUDY))
    raw["protocol"].update(seeds=[0, 1], epochs=2)
    raw["evaluation"].update(speed=False, n_boot=200)
    raw["execution"] = {"threads_per_run": 1}  # as a Ray worker's, so that its results equal these
    study = write_study(root / "tiny.yaml", raw)
    write_study(root / "ray.yaml", {**raw, "execution": {"threads_per_run": 1, "workers": 2}})
    write_study(root / "slurm.yaml", {**raw, "execution": {
        "backend": "slurm", "cpus_per_run": 1, "threads_per_run": 1, "slurm": {"time_min": 20, "array_parallelism": 2}}})
    ref = root / "ref"
    proc = _run(study, ref)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return study, ref


@pytest.mark.parametrize("phase", ["training", "report", "training in two Ray workers", "training in SLURM jobs"])
def test_a_disk_that_fills_up_mid_study_stops_it_with_one_line_and_the_rerun_completes(small_study, phase, request):
    """The free space is that of the files written before training and half of what the runs hold (the disk
    fills while the second run saves), or the runs' and 200 kB more (it fills while the report's figures are
    written). Sizes in the blocks files take (a tmpfs counts 4 kB pages). In Ray workers (a local Ray, two
    runs at a time) or SLURM jobs (a real single-node SLURM, two jobs at a time) the worker that meets the
    full disk stops the study the same way, from the driver, and no run is recorded as failed."""
    study, ref = small_study
    in_flight = phase.endswith(("Ray workers", "SLURM jobs"))  # runs at once: none may have finished
    if phase.endswith("Ray workers"):
        study = study.with_name("ray.yaml")
    slurm_files = 0
    if phase.endswith("SLURM jobs"):
        request.getfixturevalue("slurm")
        study = study.with_name("slurm.yaml")
        slurm_files = 100_000  # submitit's job pickles and logs, written before the runs' files

    def used(paths):
        return sum(p.stat().st_blocks * 512 for p in paths if p.is_file())

    runs = used((ref / "runs").rglob("*"))
    first = used(ref / f for f in ("study.yaml", "plan.json", "data_checks.json")) + 16_384
    total = used(ref.rglob("*"))
    free = first + slurm_files + (runs // 2 if phase.startswith("training") else runs + 200_000)
    with _tmpfs(2 * total) as disk:
        filler = disk / "filler"
        filler.write_bytes(b"\0" * (2 * total - free))
        out = disk / "out"
        proc = _run(study, out)
        message = " ".join(proc.stderr.split())
        assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
        assert "Traceback" not in proc.stderr and message.startswith("error: "), proc.stderr[-3000:]
        said = "No space left on device (or quota exceeded) while" if slurm_files else "No space left on device while"
        assert f"{said} writing" in message and "free some" in message, message  # (a job's word: which, unknown)
        assert f"{out}/" in message  # the file it could not write is named
        if slurm_files:  # said by the driver, told by the job through SLURM (its comment), not the full disk
            assert " in SLURM job " in message, message
        assert not list(out.rglob("*.tmp"))  # no half-written file left behind
        infos = [json.loads(p.read_text()) for p in out.glob("runs/*/*/run.json")]  # every file whole
        states = sorted(i["status"] for i in infos)
        assert "failed" not in states, states  # a full disk is not a contender's failure
        assert "done" in states or in_flight, states  # (two Ray runs in flight may both meet it)
        if phase.startswith("training"):
            assert len(states) < 4 or "running" in states, (states, message)
        else:
            assert states == ["done"] * 4 and "report" not in message
        kept = {k: v for k, v in _snapshot(out).items()
                if k.startswith("runs/") and k.endswith(("predictions.npz", "metrics.json", "best.ckpt"))}
        filler.unlink()  # space freed
        proc = _run(study, out)
        assert proc.returncode == 0, proc.stderr[-3000:]
        after = _snapshot(out)
        assert (kept or in_flight) and all(after.get(k) == v for k, v in kept.items())  # finished runs untouched
        pd.testing.assert_frame_equal(_results(out), _results(ref))
        assert (out / "report.html").is_file()


def _remove_read_only(top: Path) -> None:
    for p in [top, *top.rglob("*")]:
        with contextlib.suppress(OSError):
            p.chmod(0o755 if p.is_dir() else 0o644)
    shutil.rmtree(top, ignore_errors=True)


def _make_read_only(root: Path) -> None:
    for p in [root, *root.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)


def _without_privileges() -> list[str]:
    """A command prefix that runs the CLI as root without its capabilities (``setpriv`` drops them all, so
    file permissions apply to it as to any user: a 0o555 folder is read-only). Root's files, the checkout
    included, stay readable wherever the CI clones it, which a switch to another user would not ensure."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the CLI without the privilege to write anywhere")
    prefix = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"]
    locked = Path(tempfile.mkdtemp(prefix="bakeoff-probe-"))
    locked.chmod(0o555)
    probe = subprocess.run([*prefix, sys.executable, "-c", f"import os, bakeoff.cli; print(os.access({str(locked)!r}, "
                                                           f"os.W_OK))"], capture_output=True, text=True)
    locked.rmdir()
    if probe.returncode != 0 or probe.stdout.strip() != "False":
        pytest.skip(f"cannot drop root's capabilities here: {(probe.stderr or probe.stdout).strip()[-200:]}")
    return prefix


@pytest.mark.parametrize("case", ["new output in a read-only folder", "a read-only finished study, one seed more",
                                  "a read-only finished study, unchanged"])
def test_an_output_directory_the_user_cannot_write_is_one_line_before_any_training(small_study, case):
    """Run without the privilege to write where permissions forbid it: a new --out in a folder that may not be
    written, and a read-only finished study given a new seed: one line, exit 2, nothing changed. The same
    finished study rerun unchanged needs no write: it answers from the saved results (exit 0), still changing
    nothing."""
    import yaml

    study, ref = small_study
    prefix = _without_privileges()
    top = Path(tempfile.mkdtemp(prefix="bakeoff-ro-"))
    try:
        raw = yaml.safe_load(study.read_text())
        if "one seed more" in case:
            raw["protocol"]["seeds"] = [0, 1, 2]
        mine = write_study(top / "tiny.yaml", raw)
        code = 2
        if case.startswith("new"):
            parent = top / "shared"
            parent.mkdir()
            parent.chmod(0o555)
            out, want = parent / "out", ["is not writable by this user", "expected a directory you can write to"]
        else:
            out = top / "done"
            shutil.copytree(ref, out)
            for p in [out, *out.rglob("*")]:
                p.chmod(0o555 if p.is_dir() else 0o444)
            want = ["not writable", "expected"]
            if "unchanged" in case:
                code, want = 0, []
        before = _snapshot(out) if out.exists() else {}
        proc = _run(mine, out, *prefix)
        message = " ".join(proc.stderr.split())
        assert proc.returncode == code, (proc.returncode, proc.stderr[-3000:], proc.stdout[-2000:])
        if code == 2:
            assert "Traceback" not in proc.stderr and message.startswith("error: ") and str(out) in message, message
        else:
            assert "nothing to train" in " ".join(proc.stdout.split()), proc.stdout[-2000:]
        for w in want:
            assert w in message, (w, message)
        assert (_snapshot(out) if out.exists() else {}) == before  # nothing changed
    finally:
        _remove_read_only(top)


def test_report_on_a_read_only_study_prints_the_report_and_writes_nothing(small_study):
    """`bakeoff report` on an archived study the user may not write: the terminal report from the saved
    predictions, a line saying nothing was saved, exit 0, every file as it was (no lock, no temp file)."""
    _, ref = small_study
    prefix = _without_privileges()
    top = Path(tempfile.mkdtemp(prefix="bakeoff-ro-report-"))
    try:
        out = top / "done"
        shutil.copytree(ref, out)
        _make_read_only(out)
        before = _snapshot(out)
        env = dict(os.environ, COLUMNS="300")
        proc = subprocess.run([*prefix, sys.executable, "-m", "bakeoff.cli", "report", str(out)], capture_output=True,
                              text=True, env=env, timeout=600)
        said = " ".join((proc.stdout + proc.stderr).split())
        assert proc.returncode == 0, (proc.stderr[-3000:], proc.stdout[-2000:])
        assert "Traceback" not in proc.stderr and "auroc" in proc.stdout and "se − cnn" in proc.stdout, said
        assert "cannot be written (read-only)" in said and "nothing was rebuilt or saved" in said, said
        assert "UserWarning" not in said and "warnings.warn" not in said, said  # one line, not Python's warning
        assert _snapshot(out) == before and not list(out.rglob("*.tmp"))
    finally:
        _remove_read_only(top)


def test_ctrl_c_during_training_says_how_to_resume(tmp_path):
    """Ctrl-C (SIGINT) while a run trains: the process stops within seconds with exit 130 and the line that
    says the same command resumes (typer alone would exit 130 silently)."""
    import signal
    import time

    import yaml

    raw = json.loads(json.dumps(TINY_STUDY))
    raw["protocol"].update(seeds=[0], epochs=5000)
    study = tmp_path / "s.yaml"
    study.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}  # a hang is diagnosable: SIGABRT dumps every thread's stack
    # as in a terminal: SIGINT not ignored (a shell's background job inherits it ignored, and Python then
    # installs no KeyboardInterrupt handler: CI started with '&' would see the run never stop)
    proc = subprocess.Popen([sys.executable, "-m", "bakeoff.cli", "run", str(study), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob("runs/*/*/run.json")):
        time.sleep(0.2)
    assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-2000:]
    time.sleep(3.0)  # inside the epoch loop
    sent = time.time()
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"no exit within 60 s of SIGINT; the stacks at SIGABRT:\n{err[-6000:]}") from None
    assert proc.returncode == 130 and time.time() - sent < 10, (proc.returncode, err[-2000:])
    assert "interrupted; completed runs are kept and the same command resumes" in " ".join(err.split()), err[-2000:]
    assert "Traceback" not in err


def test_report_refuses_a_study_file_that_is_not_the_runs_own(small_study, tmp_path):
    """study.yaml replaced by another study's (other contenders): one line naming the mismatch (exit 2),
    nothing rewritten."""
    import yaml

    _, ref = small_study
    copy = tmp_path / "copy"
    shutil.copytree(ref, copy)
    raw = yaml.safe_load((copy / "study.yaml").read_text())
    raw["name"] = "someone_else"
    raw["contenders"] = {"unet": {"model": "bakeoff:se_resnet", "params": {"spatial_dims": 3, "base_channels": 8}}}
    raw["evaluation"].pop("baseline", None)
    (copy / "study.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    before = _snapshot(copy)
    proc = subprocess.run([sys.executable, "-m", "bakeoff.cli", "report", str(copy)], capture_output=True, text=True,
                          env=dict(os.environ, COLUMNS="300"), timeout=600)
    message = " ".join(proc.stderr.split())
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and message.startswith("error: "), proc.stderr
    assert "study 'someone_else' does not match any of the" in message and "was study.yaml replaced?" in message
    assert _snapshot(copy) == before


def test_report_takes_the_runs_own_study_file_as_written_and_refuses_one_with_other_settings(small_study, tmp_path):
    """study.yaml replaced by the user's own file of the same study (defaults left to the task, as written by
    hand): the report is the same as with bakeoff's resolved copy; replaced by one whose shared settings
    differ (more epochs) while the contenders are the same: one line (exit 2), nothing rewritten."""
    import yaml

    study, ref = small_study
    copy = tmp_path / "copy"
    shutil.copytree(ref, copy)
    shutil.copy(study, copy / "study.yaml")  # the hand-written file: select.mode, evaluation.primary unresolved
    proc = subprocess.run([sys.executable, "-m", "bakeoff.cli", "report", str(copy), "--no-plots"],
                          capture_output=True, text=True, env=dict(os.environ, COLUMNS="300"), timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (copy / "results.csv").read_text() == (ref / "results.csv").read_text()
    raw = yaml.safe_load(study.read_text())
    raw["protocol"]["epochs"] = 5
    (copy / "study.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    before = _snapshot(copy)
    proc = subprocess.run([sys.executable, "-m", "bakeoff.cli", "report", str(copy)], capture_output=True, text=True,
                          env=dict(os.environ, COLUMNS="300"), timeout=600)
    message = " ".join(proc.stderr.split())
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "does not match any of the 4 runs" in message and "was study.yaml replaced?" in message, message
    assert _snapshot(copy) == before
