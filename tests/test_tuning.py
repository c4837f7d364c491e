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


def test_equal_budget_tuning_on_a_segmentation_study(tmp_path):
    """Tuning trains through the task's own loop (patches of images for dense tasks), not arrays."""
    raw = {"name": "seg", "task": "semantic_segmentation",
           "data": {"source": "builtin:organelles2d", "params": {"n": 10, "size": 48, "seed": 0},
                    "normalize": "zscore", "split": {"kind": "holdout", "val_fraction": 0.3, "test_fraction": 0.2}},
           "protocol": {"seeds": [0], "epochs": 1, "batch_size": 4, "patch_size": [32, 32],
                        "iterations_per_epoch": 2, "select": {"monitor": "val/mean_dice", "mode": "max"}},
           "contenders": {"unet": {"model": "monai:UNet",
                                   "params": {"channels": [4, 8], "strides": [2], "num_res_units": 0}}},
           "evaluation": {"primary": "mean_dice", "speed": False, "boundary_metrics": False, "n_boot": 200},
           "tuning": {"mode": "equal_budget", "trials": 2, "seed": 0,
                      "space": {"optimizer.lr": {"low": 1e-4, "high": 1e-2, "log": True}}}}
    Study.from_dict(raw).run(tmp_path / "o")
    tuned = json.loads((tmp_path / "o" / "tuning" / "unet.json").read_text())
    assert [t["state"] for t in tuned["trials"]] == ["COMPLETE", "COMPLETE"]
    assert all(0 <= t["value"] <= 1 for t in tuned["trials"])


def test_a_failing_trial_keeps_its_reason(tmp_path, tiny_raw):
    tiny_raw["protocol"].update({"epochs": 1, "seeds": [0]})
    tiny_raw["contenders"] = {"cnn": tiny_raw["contenders"]["cnn"]}
    tiny_raw["evaluation"].update(speed=False, baseline="cnn")
    # a space outside what the protocol accepts: every trial fails, and the error says why
    tiny_raw["tuning"] = {"mode": "equal_budget", "trials": 2, "seed": 0,
                          "space": {"optimizer.lr": {"low": -2.0, "high": -1.0}}}
    with pytest.raises(BakeoffError, match="every trial of contender 'cnn' failed; the first: ValidationError: .* "
                       "optimizer.lr Input should be greater than 0"):
        Study.from_dict(tiny_raw).run(tmp_path / "o")
    assert (tmp_path / "o" / "tuning" / "cnn.db").is_file()
