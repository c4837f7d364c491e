"""A user's own metric from the study file, without touching bakeoff: reported, logged, selected on,
resampled for intervals, and judged in the verdict like a built-in one."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bakeoff.errors import BakeoffError

LAB_METRICS = '''
import numpy as np
import bakeoff

@bakeoff.register_metric(higher_is_better=True, tasks=["binary_classification"])
def sens_at_spec90(y, probs):
    """Sensitivity at the score threshold that keeps 90 % specificity."""
    neg = np.sort(probs[y == 0])
    if len(neg) == 0 or not (y == 1).any():
        return 0.0
    return float(np.mean(probs[y == 1] > _cut(neg)))

def _cut(neg):
    return neg[int(np.ceil(0.9 * len(neg))) - 1]

@bakeoff.register_metric(higher_is_better=False, tasks=["multiclass_classification"])
def multiclass_only(y, probs):
    return 0.0

def not_a_metric(y, probs):
    return 0.0
'''


@pytest.fixture
def labmetrics(tmp_path, monkeypatch):
    from bakeoff.tasks.metric import REGISTRY

    (tmp_path / "labmetrics.py").write_text(LAB_METRICS)
    monkeypatch.syspath_prepend(str(tmp_path))
    before = dict(REGISTRY)
    yield
    REGISTRY.clear()
    REGISTRY.update(before)  # the rest of the session sees the built-in metrics only


def test_a_user_metric_is_used_like_a_built_in_one(tmp_path, tiny_raw, labmetrics):
    from bakeoff.api import Study

    tiny_raw["protocol"].update(seeds=[0, 1], epochs=2, select={"monitor": "val/sens_at_spec90", "mode": "max"})
    tiny_raw["evaluation"].update(metrics=["labmetrics:sens_at_spec90"], primary="sens_at_spec90", speed=False,
                                  n_boot=200)
    out = tmp_path / "o"
    Study.from_dict(tiny_raw).run(out)
    import labmetrics

    df = pd.read_csv(out / "results.csv")
    assert (df["status"] == "done").all()
    for _, r in df.iterrows():
        run = out / "runs" / r["contender"] / r["run_id"]
        preds = np.load(run / "predictions.npz")
        direct = labmetrics.sens_at_spec90(preds["test_y"], preds["test_probs"])
        assert r["test_sens_at_spec90"] == pytest.approx(direct, abs=1e-12)
        log = pd.read_csv(next(run.rglob("metrics.csv")))
        assert "val/sens_at_spec90" in log.columns  # logged in training, and selected on
    comp = json.loads((out / "comparison.json").read_text())
    (pair,) = comp["pairs"]
    assert pair["metric"] == "sens_at_spec90" and pair["verdict"] and pair["ci_low"] <= pair["difference"]
    means = df.groupby("contender")["test_sens_at_spec90"].mean()
    assert pair["difference"] == pytest.approx(means[pair["a"]] - means[pair["b"]], abs=1e-12)
    intervals = pd.read_csv(out / "intervals.csv")
    mine = intervals[intervals["metric"] == "sens_at_spec90"]
    assert len(mine) == len(df) and (mine["ci_low"] <= mine["value"]).all() and (mine["value"] <= mine["ci_high"]).all()

    # the metric's code changes under the same name, here only a helper beside it: the report computes it
    # again, not the kept scores
    import importlib

    from bakeoff.report.build import rebuild_report

    module = tmp_path / "labmetrics.py"
    module.write_text(LAB_METRICS.replace("return neg[int(np.ceil(0.9 * len(neg))) - 1]",
                                          "return neg[int(np.ceil(0.5 * len(neg))) - 1]"))
    importlib.reload(labmetrics)
    rebuild_report(out, make_plots=False)
    again = pd.read_csv(out / "results.csv")
    for _, r in again.iterrows():
        preds = np.load(out / "runs" / r["contender"] / r["run_id"] / "predictions.npz")
        assert r["test_sens_at_spec90"] == pytest.approx(labmetrics.sens_at_spec90(preds["test_y"], preds["test_probs"]),
                                                         abs=1e-12)
    assert not np.allclose(again["test_sens_at_spec90"], df["test_sens_at_spec90"])


@pytest.mark.parametrize("ref, match", [
    ("labmetrics:multiclass_only", r"evaluation.metrics\[0\]: labmetrics:multiclass_only is a metric for "
                                   r"\['multiclass_classification'\], not for binary_classification"),
    ("labmetrics:not_a_metric", r"evaluation.metrics\[0\]: labmetrics:not_a_metric is not a metric; expected a "
                                r"function decorated with @bakeoff.register_metric"),
    ("labmetrics:sens_at_spec", r"labmetrics has no callable 'sens_at_spec' \(did you mean 'sens_at_spec90'\?\)"),
])
def test_a_wrong_user_metric_fails_before_training(tiny_raw, labmetrics, ref, match):
    from bakeoff.api import Study

    tiny_raw["evaluation"]["metrics"] = [ref]
    with pytest.raises(BakeoffError, match=match):
        Study.from_dict(tiny_raw).plan()
