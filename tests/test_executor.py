"""A run is self-contained: it pickles with its resolved protocol, runs from a context rebuilt from the study
directory alone (as in another process), and the study then finds it done."""

from __future__ import annotations

import json
import pickle

from bakeoff.api import Study
from bakeoff.runs.context import StudyContext
from bakeoff.runs.runner import execute_run
from bakeoff.runs.store import StudyStore


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
