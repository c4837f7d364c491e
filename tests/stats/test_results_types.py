"""comparison.json against its declared types (bakeoff.stats.results): every comparison a study builds is
validated where it is built (``stats.study.study_result``), in tests and for users alike; here, that the check
can fail, at the top level and nested, and that the published JSON Schema is the one the types generate."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from pydantic import ValidationError

from bakeoff.stats.results import json_schema, validate

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "comparison.schema.json"

GROUP = {"folds": [0], "runs": 3, "test_units": 100, "tau2": 1e-4, "shared": 2e-5, "churn": 1e-5, "run_var": 1.1e-4,
         "run_var_floor": None, "side_share": None}
DESIGN = {"test_sets": "single", "notes": [],
          "components": {"design": "single", "pooled_over_folds": False, "seeds_across_folds": False,
                         "fold_spread": None, "df": 2.4, "groups": [GROUP]},
          "variance_shares": {"training_runs": 0.6, "test_units": 0.3, "interaction": 0.1}}
PAIR = {"a": "b", "b": "a", "metric": "auroc", "higher_is_better": True, "difference": 0.01, "ci_low": -0.02,
        "ci_high": 0.04, "ci_level": 0.95, "ci_method": "m", "p_value": 0.4, "p_margin": 0.4, "p_equivalence": 0.2,
        "ci_equivalence": [-0.01, 0.03], "df": 2.0, "se": 0.01, "test": "t", "equivalence_test": "tost",
        "min_effect": 0.0, "n_runs": 3, "n_test_samples": 100, "unit": "sample", "design": DESIGN,
        "contenders": {"a": {"mean": 0.8, "ci_low": 0.7, "ci_high": 0.9, "ci_level": 0.95, "df": 2.0,
                             "interval_method": "t"}},
        "scope": "training recipe", "scope_text": "about the recipe", "verdict": "inconclusive",
        "per_run": [{"seed": 0, "fold": 0, "delong_auroc": {"p_value": 0.3, "z": 1.0}}],
        "to_resolve": {"power": 0.8, "seeds": 10, "test_units": None}}
FAIRNESS = {"contenders": ["a", "b"], "identical": {"protocol.epochs": 3, "protocol.augment": ["flip"]},
            "deviations": {"protocol.optimizer.lr": {"a": 0.001, "b": 0.01, "declared": True, "tuned": False,
                                                     "by_architecture": False}},
            "seed_streams": {"value": "shared", "seed_spread": "paired"}, "declared_overrides": {"b": ["x"]},
            "tuning": {"mode": "none"}, "fair": True, "note": "n"}
COMPARISON = {"primary": "auroc", "baseline": "a", "alpha": 0.05, "min_effect": 0.0, "threshold": 0.5,
              "pairs": [PAIR], "fairness": FAIRNESS,
              "significance_map": {"contenders": ["a", "b"], "cells": {"a": {"a": None, "b": "inconclusive"},
                                                                       "b": {"a": "inconclusive", "b": None}},
                                   "scopes": {"a": {"a": None, "b": "training recipe"},
                                              "b": {"a": "training recipe", "b": None}}}}


def _mutations():
    pair = lambda c: c["pairs"][0]  # noqa: E731
    return [
        (lambda c: pair(c).update(new_statistic=1.0), "new_statistic"),
        (lambda c: pair(c).pop("verdict"), "verdict"),
        (lambda c: pair(c).update(n_runs="three"), "n_runs"),
        (lambda c: c.update(extra_table=[]), "extra_table"),
        # nested: an undeclared key, a missing one and a mistyped one, three levels down
        (lambda c: pair(c)["design"]["components"]["groups"][0].update(bogus=1), "bogus"),
        (lambda c: c["fairness"].pop("fair"), "fair"),
        (lambda c: c["significance_map"]["cells"]["a"].update(b=3), "cells"),
        (lambda c: pair(c)["to_resolve"].update(seeds="ten"), "seeds"),
    ]


def test_a_declared_comparison_passes_and_an_undeclared_key_a_missing_one_or_a_wrong_type_fail():
    validate(COMPARISON)
    jsonschema.validate(COMPARISON, json_schema())
    for change, where in _mutations():
        bad = copy.deepcopy(COMPARISON)
        change(bad)
        with pytest.raises(ValidationError, match=where):
            validate(bad)
        with pytest.raises(jsonschema.ValidationError):  # the published schema says the same
            jsonschema.validate(bad, json_schema())


def test_the_published_schema_is_the_one_the_types_generate():
    """docs/schemas/comparison.schema.json: regenerate with `python -m bakeoff.stats.results > FILE`."""
    assert json.loads(SCHEMA_FILE.read_text()) == json.loads(json.dumps(json_schema())), \
        "out of date: python -m bakeoff.stats.results > docs/schemas/comparison.schema.json"


# suite.json (bakeoff.stats.suite_results), built by the call the suite makes (stats.study.suite_result)
SUITE_SCHEMA_FILE = SCHEMA_FILE.parent / "suite.schema.json"


def _dataset_comparison(difference: float, verdict: str) -> dict:
    pair = {"a": "b", "b": "a", "metric": "auroc", "higher_is_better": True, "difference": difference, "se": 0.01,
            "ci_low": difference - 0.02, "ci_high": difference + 0.02, "min_effect": 0.0, "verdict": verdict,
            "contenders": {"a": {"mean": 0.8}, "b": {"mean": 0.8 + difference}}}
    return {"primary": "auroc", "baseline": "a", "contenders": ["a", "b"], "pairs": [pair]}


def _suite(names=("d1", "d2", "d3"), normalise="none", runs=None):
    from bakeoff.stats.study import suite_result

    comparisons = {n: _dataset_comparison(0.01 * (i + 1), "b better" if i else "inconclusive")
                   for i, n in enumerate(names)}
    rng = np.random.default_rng(0)
    runs = runs if runs is not None else {n: {c: list(rng.uniform(0.7, 0.9, 3)) for c in ("a", "b")} for n in names}
    cost = {"runs": 6 * len(names), "train_time_s": {"a": 1.0, "b": 2.0}, "total_train_time_s": 3.0}
    return suite_result("s", comparisons, runs, cost, alpha=0.05, normalise=normalise, contenders=["a", "b"],
                        overrides={names[0]: {"protocol": {"batch_size": 16}}})


def test_every_shape_of_suite_result_is_declared_and_a_nested_change_fails():
    """Three datasets, one (no interval across datasets), normalise: relative (reference scores), and no
    dataset that scores both contenders (the summaries' note only): each validates where it is built and
    against the published schema; an undeclared, missing or mistyped key three levels down fails both."""
    from bakeoff.stats.suite_results import json_schema as suite_schema
    from bakeoff.stats.suite_results import validate as validate_suite

    shapes = [_suite(), _suite(("only",)), _suite(normalise="relative"),
              _suite(runs={n: {"a": [0.8]} for n in ("d1", "d2", "d3")})]
    assert "ci_low" not in shapes[1]["pairs"][0] and "reference_scores" in shapes[2]["pairs"][0]
    assert set(shapes[3]["summaries"]) == {"metric", "higher_is_better", "scores", "normalisation", "note"}
    for result in shapes:
        jsonschema.validate(json.loads(json.dumps(result)), suite_schema())
    good = shapes[0]
    for change, where in [
        (lambda s: s["pairs"][0]["wins"].update(ties=0), "ties"),
        (lambda s: s["summaries"]["estimates"]["iqm"]["a"].pop("ci"), "ci"),
        (lambda s: s["summaries"]["robustness"]["winners"].update(x="a"), "winners"),
        (lambda s: s["cost"].update(runs="six"), "runs"),
        (lambda s: s.update(plots={}), "plots"),
    ]:
        bad = copy.deepcopy(good)
        change(bad)
        with pytest.raises(ValidationError, match=where):
            validate_suite(bad)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(json.loads(json.dumps(bad)), suite_schema())


def test_the_published_suite_schema_is_the_one_the_types_generate():
    """docs/schemas/suite.schema.json: regenerate with `python -m bakeoff.stats.suite_results > FILE`."""
    from bakeoff.stats.suite_results import json_schema as suite_schema

    assert json.loads(SUITE_SCHEMA_FILE.read_text()) == json.loads(json.dumps(suite_schema())), \
        "out of date: python -m bakeoff.stats.suite_results > docs/schemas/suite.schema.json"
