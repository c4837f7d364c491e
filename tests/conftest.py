from __future__ import annotations

import copy
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

# A report page that cannot be built is a warning for users (the study keeps its results) and an error in the
# tests, in this process (pyproject's filterwarnings) and in every process a test starts (Python's own -W
# setting, through the environment they inherit): the product has no switch of its own for it.
PAGE_WARNING = "error:report.html could not be built:UserWarning"
os.environ["PYTHONWARNINGS"] = ",".join(w for w in (os.environ.get("PYTHONWARNINGS"), PAGE_WARNING) if w)

# Under pytest-xdist (`make test`: two workers on two cores) each worker, and every process a test starts (a
# `bakeoff run`, a SLURM job, a DDP rank), would give torch's OpenMP pool every core: two such pools at once
# spin against each other. Two 2-epoch demo studies run at once took 39-49 s with one thread each and 75-190 s
# with torch's default of two (4 alternating pairs, 2 cores). Here each process gets its share of the cores; a
# run that sets its threads (Ray's cpus_per_run, SLURM, threads_per_run) still does. `make test-fast` and
# TEST_WORKERS=0 (one process) keep torch's default, so multi-threaded kernels stay tested.
if os.environ.get("PYTEST_XDIST_WORKER") and "OMP_NUM_THREADS" not in os.environ:
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    os.environ["OMP_NUM_THREADS"] = str(max(1, _cores // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))

TINY_STUDY: dict[str, Any] = {
    "name": "tiny",
    "task": "binary_classification",
    "data": {"source": "builtin:spots3d", "params": {"n": 240, "positive_fraction": 0.3, "snr": 4.0, "seed": 1},
             "split": {"kind": "holdout", "val_fraction": 0.25, "test_fraction": 0.25}},
    "protocol": {"seeds": [0, 1], "epochs": 2, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.003},
                 "loss": {"name": "bce", "class_weights": "balanced"}, "augment": ["flip", "rot90"],
                 "select": {"monitor": "val/auroc", "mode": "max"}},
    "contenders": {
        "cnn": {"model": "bakeoff:simple_cnn3d"},
        "se": {"model": "bakeoff:se_resnet", "params": {"spatial_dims": 3, "base_channels": 4, "num_blocks": 1}},
    },
    "evaluation": {"primary": "auroc", "baseline": "cnn", "speed_repeats": 2},
}


@pytest.fixture
def tiny_raw() -> dict[str, Any]:
    return copy.deepcopy(TINY_STUDY)


# results.csv columns that are measured, not computed, and differ between two runs of the same study: times,
# rates, memory, latency and whether the machine was busy while timing
MEASURED = ("time", "per_s", "memory", "latency", "timing_note")


def computed_columns(df: Any) -> Any:
    """The columns of a results table that two runs of one study must agree on (not ``MEASURED``)."""
    return df[[c for c in df.columns if not any(t in c for t in MEASURED)]]


def write_study(path: Path, raw: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture
def tiny_yaml(tmp_path: Path, tiny_raw: dict[str, Any]) -> Path:
    return write_study(tmp_path / "tiny.yaml", tiny_raw)


@pytest.fixture(scope="session")
def slurm():
    """A real single-node SLURM cluster on this machine (scripts/slurm_local.sh), for the session."""
    if os.geteuid() != 0:
        pytest.skip("starting a SLURM cluster needs root (CI runs as root)")
    script = Path(__file__).resolve().parents[1] / "scripts" / "slurm_local.sh"
    proc = subprocess.run(["bash", str(script), "start"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yield
    if "already running" not in proc.stdout:  # another session's cluster: theirs to stop
        subprocess.run(["bash", str(script), "stop"], timeout=60)


# Markers (pyproject.toml): ``engine`` for tests that drive a real external engine (SLURM, Ray, headless
# Chromium, a Jupyter kernel, several processes), ``slow`` for end-to-end studies and simulations that
# take more than ~10 s on 2 cores; `make test-fast` leaves both out, `make test` runs everything.
ENGINE_FILES = ("test_slurm.py", "test_executor.py", "test_html_report.py", "test_notebook.py",
                "test_multi_device.py", "test_tracking.py")
SLOW_FILES = ("test_calibration.py", "test_resume.py", "test_environment.py", "test_examples.py",
              "test_seg_examples.py", "test_digits_example.py", "test_sequential.py", "test_tuning.py",
              "test_study_verdicts.py", "test_compare_cli.py", "test_suite.py", "test_data_scale.py")
SLOW_TESTS = ("test_cpu_reruns_are_bit_identical_and_recorded", "test_kfold_study_through_the_api",
              "test_compile_reports_its_time_apart_and_trains", "test_names_at_the_edge_train_and_write_only_under_out")


# `make test` runs two pytest-xdist workers (--dist loadgroup). These share one machine-wide engine and run in
# one worker, one after another: the SLURM cluster (one slurmctld, restarted by the fixture), a local Ray (a
# second ``ray.init()`` joins the Ray already running instead of starting its own) and DDP process groups.
SERIAL_FILES = ("test_slurm.py", "test_environment.py", "test_executor.py", "test_multi_device.py", "test_gpu.py")
SERIAL_TESTS = ("test_a_local_ray_takes_every_datasets_runs_at_once",)


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    for item in items:
        name = Path(str(item.fspath)).name
        if name in ENGINE_FILES:
            item.add_marker(pytest.mark.engine)
        if name in SLOW_FILES or item.originalname in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
        if name in SERIAL_FILES or item.originalname in SERIAL_TESTS or "slurm" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("engines"))
