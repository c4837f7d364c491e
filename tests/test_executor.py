"""A run is self-contained: it pickles with its resolved protocol, runs from a context rebuilt from the study
directory alone (as in another process), and the study then finds it done."""

from __future__ import annotations

import json
import os
import pickle

from bakeoff.api import Study
from bakeoff.runs.context import StudyContext
from bakeoff.runs.runner import execute_run
from bakeoff.runs.store import StudyStore
from tests.conftest import computed_columns


def test_a_pickled_run_executes_from_the_study_directory_alone(tmp_path, tiny_raw):
    tiny_raw["protocol"].update(seeds=[0], epochs=1)
    tiny_raw["contenders"]["cnn"]["protocol"] = {"optimizer": {"lr": 0.001}}  # an override travels with the run
    tiny_raw["evaluation"]["speed"] = False
    study = Study.from_dict(tiny_raw)
    runs = study.plan()
    store = StudyStore(tmp_path / "o")
    store.open_for(study.config)
    store.write_plan(runs)
    store.unlock()
    shipped = pickle.loads(pickle.dumps(runs[0]))
    assert shipped == runs[0] and shipped.protocol["optimizer"]["lr"] == 0.001
    assert store.read_plan()[0].protocol == runs[0].protocol

    elsewhere = StudyContext(StudyStore(tmp_path / "o").saved_study())  # nothing but the directory
    info = execute_run(elsewhere, StudyStore(tmp_path / "o"), shipped)
    assert info["status"] == "done", info.get("error")
    assert info["hash"] == runs[0].hash and info["protocol"] == runs[0].protocol

    before = json.loads((tmp_path / "o" / "runs" / "cnn" / "seed0-fold0" / "run.json").read_text())["finished"]
    report = study.run(tmp_path / "o")  # the finished run is found, not trained again
    after = json.loads((tmp_path / "o" / "runs" / "cnn" / "seed0-fold0" / "run.json").read_text())["finished"]
    assert before == after and len(report.results) == 2


def test_a_local_ray_runs_the_study_with_the_local_executors_results(tmp_path, tiny_raw):
    """execution.workers: 2 runs through a real local Ray (2 CPUs), two runs at a time, epochs streamed
    back; every run's results equal the one-after-another executor's (CPU, one thread per run in both)."""
    import pandas as pd

    tiny_raw["protocol"].update(seeds=[0, 1], epochs=2)
    tiny_raw["evaluation"].update(speed=False, n_boot=200)
    tiny_raw["execution"] = {"threads_per_run": 1}
    local = Study.from_dict(tiny_raw).run(tmp_path / "local")
    tiny_raw["execution"] = {"workers": 2, "threads_per_run": 1}
    events = []
    ray_report = Study.from_dict(tiny_raw).run(tmp_path / "ray", events.append)
    keep = list(computed_columns(local.results).columns)
    sort = ["contender", "seed", "fold"]
    pd.testing.assert_frame_equal(ray_report.results[keep].sort_values(sort).reset_index(drop=True),
                                  local.results[keep].sort_values(sort).reset_index(drop=True))
    assert (ray_report.results["status"] == "done").all() and len(ray_report.results) == 4
    from bakeoff.runs.events import EpochDone, Finished, Started

    assert sum(isinstance(e, EpochDone) for e in events) == 8  # typed events: 2 epochs of 4 runs, streamed back
    assert sorted(e.run.key for e in events if isinstance(e, Finished)) == sorted(
        e.run.key for e in events if isinstance(e, Started)) and sum(isinstance(e, Finished) for e in events) == 4
    assert all(e.epochs == 2 and "val/auroc" in e.metrics for e in events if isinstance(e, EpochDone))
    pids = {json.loads(p.read_text())["pid"] for p in (tmp_path / "ray" / "runs").glob("*/*/run.json")}
    assert len(pids) >= 2 and os.getpid() not in pids  # in Ray's worker processes, not here


def test_a_two_worker_ray_study_on_image_files_decodes_them_once(tmp_path):
    """The driver decodes the PNGs into DIR/cache before any run starts; the Ray workers open that cache
    (the data travel to them by reference: paths, not pixels) and never decode again."""
    from tests.images.pngs import png_study, write_pngs

    raw = png_study(write_pngs(tmp_path / "d", 120, size=12, signal=True))
    raw["protocol"]["seeds"] = [0, 1]
    raw["execution"] = {"workers": 2, "threads_per_run": 1}
    report = Study.from_dict(raw).run(tmp_path / "ray")
    assert (report.results["status"] == "done").all() and len(report.results) == 4
    builds = (tmp_path / "ray" / "cache" / "builds.log").read_text().splitlines()
    assert len(builds) == 1 and json.loads(builds[0])["pid"] == os.getpid()  # one build, by the driver
    pids = {json.loads(p.read_text())["pid"] for p in (tmp_path / "ray" / "runs").glob("*/*/run.json")}
    assert len(pids) >= 2 and os.getpid() not in pids
