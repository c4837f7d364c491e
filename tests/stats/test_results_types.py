"""comparison.json against its declared types (bakeoff.stats.results): every study the suite runs is checked
when its report is built (BAKEOFF_STRICT_REPORT, set in conftest); here, that the check can fail."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from bakeoff.stats.results import validate

PAIR = {"a": "b", "b": "a", "metric": "auroc", "higher_is_better": True, "difference": 0.01, "ci_low": -0.02,
        "ci_high": 0.04, "ci_level": 0.95, "ci_method": "m", "p_value": 0.4, "p_margin": 0.4, "p_equivalence": 0.2,
        "ci_equivalence": [-0.01, 0.03], "df": 2.0, "se": 0.01, "test": "t", "equivalence_test": "tost",
        "min_effect": 0.0, "n_runs": 3, "n_test_samples": 100, "unit": "sample", "design": {},
        "contenders": {"a": {"mean": 0.8, "ci_low": 0.7, "ci_high": 0.9, "ci_level": 0.95, "df": 2.0,
                             "interval_method": "t"}},
        "scope": "training recipe", "scope_text": "about the recipe", "verdict": "inconclusive", "per_run": []}
COMPARISON = {"primary": "auroc", "baseline": "a", "alpha": 0.05, "min_effect": 0.0, "threshold": 0.5,
              "pairs": [PAIR], "fairness": {}}


def test_a_declared_comparison_passes_and_an_undeclared_key_a_missing_one_or_a_wrong_type_fail():
    validate(COMPARISON)
    for change, where in ((lambda c: c["pairs"][0].update(new_statistic=1.0), "new_statistic"),
                          (lambda c: c["pairs"][0].pop("verdict"), "verdict"),
                          (lambda c: c["pairs"][0].update(n_runs="three"), "n_runs"),
                          (lambda c: c.update(extra_table=[]), "extra_table")):
        bad = copy.deepcopy(COMPARISON)
        change(bad)
        with pytest.raises(ValidationError, match=where):
            validate(bad)
