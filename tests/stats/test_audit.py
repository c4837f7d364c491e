"""The fairness audit compares how each run trained (run.json → training) like the protocol."""

from __future__ import annotations

from bakeoff.stats.audit import fairness_audit


def _info(contender, ops, compile_=False, samples=100.0):
    return {"status": "done", "contender": contender, "seed": 0, "fold": 0, "protocol": {"epochs": 2},
            "split": {"test": "abc"}, "device": "cuda:0",
            "training": {"determinism": {"policy": "auto", "mode": "warn" if ops else "strict",
                                         "nondeterministic_ops": ops},
                         "compile": compile_, "train_samples_per_s": samples, "compile_time_s": 1.0}}


def test_ops_without_deterministic_kernels_are_listed_but_follow_from_the_architecture():
    audit = fairness_audit([_info("cnn", []), _info("se", ["max_pool3d_with_indices_backward_cuda"], samples=50)],
                           {})
    dev = audit["deviations"]
    assert dev["training.determinism.mode"]["se"] == "warn" and dev["training.determinism.mode"]["by_architecture"]
    assert dev["training.determinism.nondeterministic_ops"]["se"] == ["max_pool3d_with_indices_backward_cuda"]
    assert "training.train_samples_per_s" not in dev and "training.compile_time_s" not in dev  # per-run figures
    assert audit["identical"]["training.determinism.policy"] == "auto"
    assert audit["fair"]


def test_a_setting_that_differs_is_an_undeclared_deviation():
    audit = fairness_audit([_info("cnn", []), _info("se", [], compile_=True)], {})
    assert audit["deviations"]["training.compile"]["se"] is True
    assert not audit["deviations"]["training.compile"]["by_architecture"]
    assert not audit["fair"]
