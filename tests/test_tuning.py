"""Equal-budget tuning: same number of trials per contender, on validation only, resumable, audited."""

from __future__ import annotations

import json

import pytest

from bakeoff.api import Study
from bakeoff.errors import BakeoffError


def test_equal_budget_tuning_end_to_end(tmp_path, tiny_raw):
    tiny_raw["protocol"].update({"epochs": 1, "seeds": [0]})
    tiny_raw["evaluation"]["speed"] = False
    tiny_raw["tuning"] = {"mode": "equal_budget", "trials": 3, "seed": 1,
                          "space": {"optimizer.lr": {"low": 1e-4, "high": 1e-2, "log": True}}}
    report = Study.from_dict(tiny_raw).run(tmp_path / "o")
    for name in ("cnn", "se"):
        tuned = json.loads((tmp_path / "o" / "tuning" / f"{name}.json").read_text())
        assert tuned["budget"] == 3 and len(tuned["trials"]) == 3
        assert all(1e-4 <= t["params"]["optimizer.lr"] <= 1e-2 for t in tuned["trials"])
        best = max(tuned["trials"], key=lambda t: t["value"])
        assert tuned["best_params"] == best["params"]
        info = json.loads((tmp_path / "o" / "runs" / name / "seed0-fold0" / "run.json").read_text())
        assert info["protocol"]["optimizer"]["lr"] == pytest.approx(tuned["best_params"]["optimizer.lr"])
    fairness = report.comparison["fairness"]
    assert fairness["tuning"]["mode"] == "equal_budget" and fairness["tuning"]["trials_per_contender"] == 3
    if "protocol.optimizer.lr" in fairness["deviations"]:
        assert fairness["deviations"]["protocol.optimizer.lr"]["tuned"]
    assert fairness["fair"]
    # a second run resumes: no new trials, no retraining
    Study.from_dict(tiny_raw).run(tmp_path / "o")
    assert len(json.loads((tmp_path / "o" / "tuning" / "cnn.json").read_text())["trials"]) == 3


def test_tuning_space_is_validated(tiny_raw):
    tiny_raw["tuning"] = {"mode": "equal_budget", "trials": 2}
    with pytest.raises(BakeoffError, match="needs a search space"):
        Study.from_dict(tiny_raw)
    tiny_raw["tuning"]["space"] = {"optimiser.lr": {"low": 1e-4, "high": 1e-2}}
    with pytest.raises(BakeoffError, match="'optimiser.lr' is not a protocol setting"):
        Study.from_dict(tiny_raw)
    tiny_raw["tuning"]["space"] = {"optimizer.lr": {"low": 0, "high": 1e-2, "log": True}}
    with pytest.raises(BakeoffError, match="log range needs low > 0"):
        Study.from_dict(tiny_raw)
