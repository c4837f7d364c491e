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


def test_per_contender_seed_streams_pool_the_seed_spreads_and_the_audit_says_so(tmp_path, tiny_raw):
    """protocol.seed_streams: per_contender: a seed's runs of two contenders train from different streams
    (run.json → stream_seed), the verdict pools the two contenders' seed spreads (more degrees of freedom
    than the paired spread of the same runs), and the fairness audit states the streams and the rule."""
    from bakeoff.stats.compare import compare_runs
    from bakeoff.stats.design import POOLED_METHOD

    contenders = {"cnn": {"model": "bakeoff:simple_cnn3d"},
                  "slow": {"model": "bakeoff:simple_cnn3d", "protocol": {"optimizer": {"lr": 1e-4}}}}
    tiny_raw["protocol"]["seed_streams"] = "per_contender"
    study = _study(tiny_raw, contenders)
    report = study.run(tmp_path / "o")
    infos = {c: json.loads((tmp_path / "o" / "runs" / c / "seed0-fold0" / "run.json").read_text()) for c in contenders}
    assert infos["cnn"]["stream_seed"] != infos["slow"]["stream_seed"]
    assert infos["cnn"]["stream_seed"] == study.config.protocol.stream_seed(0, "cnn")
    fair = report.comparison["fairness"]
    assert fair["seed_streams"]["value"] == "per_contender" and "pool" in fair["seed_streams"]["seed_spread"]
    (pair,) = report.comparison["pairs"]
    assert POOLED_METHOD in pair["ci_method"], pair["ci_method"]
    # the same saved runs judged as shared streams would be: the spread of their paired differences
    from bakeoff.report.build import collect_results
    from bakeoff.runs.store import StudyStore

    ev = report.study.evaluation
    df, evaluations = collect_results(StudyStore(tmp_path / "o"), report.study.task, ev.threshold, list(contenders),
                                      ev.val_threshold, ev)
    paired = compare_runs(report.study.task, evaluations, df, pair["a"], pair["b"], ev, seed=0)
    assert POOLED_METHOD not in paired["ci_method"] and pair["df"] > paired["df"], (pair["df"], paired["df"])
