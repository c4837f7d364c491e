"""Verdicts over several pairs are decided on Holm-adjusted p-values."""

from __future__ import annotations

from statsmodels.stats.multitest import multipletests

from bakeoff.stats.compare import adjust_pairs


def _pair(a, p):
    comp = {"design": "single", "groups": [{"folds": [0], "runs": 3, "test_units": 100, "tau2": 1e-4,
                                            "shared": 1e-4, "churn": 1e-4}]}
    return {"a": a, "b": "base", "difference": 0.05, "ci_low": 0.02, "ci_high": 0.08, "min_effect": 0.0,
            "higher_is_better": True, "p_value": p, "p_margin": p, "p_equivalence": 1.0, "n_test_samples": 100,
            "per_run": [{"seed": 0}], "verdict": f"{a} better", "design": {"components": comp}}


def test_holm_adjusted_p_decides_the_verdict():
    pairs = [_pair("x", 0.03), _pair("y", 0.04), _pair("z", 0.001)]
    info = adjust_pairs(pairs, "auroc", alpha=0.05)
    expected = multipletests([0.03, 0.04, 0.001], method="holm")[1]
    assert [p["p_value_holm"] for p in pairs] == list(expected)
    assert [p["verdict"] for p in pairs] == ["inconclusive", "inconclusive", "z better"]
    assert "to_resolve" in pairs[0] and "adjusted" in info["family"]
    single = [_pair("x", 0.03)]
    adjust_pairs(single, "auroc")
    assert single[0]["verdict"] == "x better"
