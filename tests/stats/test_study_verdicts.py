"""End to end: identical contenders are never 'better'; a crippled contender is found worse."""

from __future__ import annotations

import json

from bakeoff.api import Study


def _study(tiny_raw, contenders, **evaluation):
    tiny_raw["data"]["params"] = {"n": 300, "positive_fraction": 0.4, "snr": 6.0, "seed": 5}
    # three seeds: with two, the seed-to-seed spread of the 5-epoch CNN (AUROC 0.69 to 0.94) has one degree
    # of freedom and an honest interval cannot exclude 0 even against a contender that never learned
    tiny_raw["protocol"].update({"epochs": 5, "seeds": [0, 1, 2], "augment": []})
    tiny_raw["contenders"] = contenders
    tiny_raw["evaluation"] = {"primary": "auroc", "baseline": next(iter(contenders)), "speed": False,
                              "n_boot": 500, "n_permutations": 199, **evaluation}
    return Study.from_dict(tiny_raw)


def test_identical_contenders_are_never_better(tmp_path, tiny_raw):
    cnn = {"model": "bakeoff:simple_cnn3d"}
    report = _study(tiny_raw, {"first": dict(cnn), "second": dict(cnn)}, min_effect=0.01).run(tmp_path / "o")
    (pair,) = report.comparison["pairs"]
    assert pair["difference"] == 0.0
    assert pair["verdict"] == "equivalent within ±0.01"
    saved = json.loads((tmp_path / "o" / "comparison.json").read_text())
    assert saved["pairs"][0]["verdict"] == pair["verdict"]
    assert saved["fairness"]["deviations"] == {} and saved["fairness"]["fair"]
    assert "split.fold0.test" in saved["fairness"]["identical"]


def test_a_crippled_contender_is_found_worse(tmp_path, tiny_raw):
    contenders = {
        "cnn": {"model": "bakeoff:simple_cnn3d"},
        "crippled": {"model": "bakeoff:simple_cnn3d", "params": {"hidden": 1},
                     "protocol": {"optimizer": {"lr": 1e-6}}},
    }
    report = _study(tiny_raw, contenders).run(tmp_path / "o")
    (pair,) = report.comparison["pairs"]
    assert pair["a"] == "crippled" and pair["b"] == "cnn"
    assert pair["verdict"] == "cnn better", pair
    assert pair["ci_high"] < 0 and pair["p_value"] < 0.05
    for c in ("cnn", "crippled"):  # each one's own interval: inside the AUROC's range, around its mean
        own = report.comparison["contenders"][c]
        assert 0 <= own["ci_low"] <= own["mean"] <= own["ci_high"] <= 1, own
    dev = report.comparison["fairness"]["deviations"]
    assert dev["protocol.optimizer.lr"]["crippled"] == 1e-6 and dev["protocol.optimizer.lr"]["declared"]
