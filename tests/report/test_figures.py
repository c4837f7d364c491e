"""What the figures say, read from the matplotlib figures themselves (captured before they are saved):
class names on the confusion matrices, whole epochs on the training curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bakeoff.report import plots


@pytest.fixture(autouse=True)
def _close_figures():
    """The captured figures are never saved, so never closed by the report: closed here, so that they do not
    outlive the test (test_figsave checks that the report leaves no figure open)."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def _capture(monkeypatch):
    seen = []

    def keep(fig, path):
        seen.append(fig)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    monkeypatch.setattr(plots, "_save", keep)
    return seen


def test_confusion_matrices_are_labelled_with_the_class_names(monkeypatch, tmp_path):
    seen = _capture(monkeypatch)
    cm = np.array([[40, 2], [5, 13]])
    evaluations = {("cnn", "seed0-fold0"): {"eval": {"test_confusion": cm}},
                   ("se", "seed0-fold0"): {"eval": {"test_confusion": cm}}}
    plots.confusion_matrices(evaluations, ["cnn", "se"], 0.5, tmp_path, ["no spot", "spot"])
    for ax in seen[0].axes:
        assert [t.get_text() for t in ax.get_xticklabels()] == ["no spot", "spot"]
        assert [t.get_text() for t in ax.get_yticklabels()] == ["no spot", "spot"]
    plots.confusion_matrices(evaluations, ["cnn", "se"], 0.5, tmp_path)  # no names: the labels
    assert [t.get_text() for t in seen[1].axes[0].get_xticklabels()] == ["0", "1"]


def test_class_names_come_from_the_study_directory(tmp_path):
    import json

    from bakeoff.runs.store import StudyStore

    (tmp_path / "data_checks.json").write_text(json.dumps({"class_names": {"0": "even", "1": "odd"}}))
    assert plots.class_names_of(StudyStore(tmp_path), {}) == ["even", "odd"]


def test_training_curves_tick_whole_epochs(monkeypatch, tmp_path):
    seen = _capture(monkeypatch)
    from bakeoff.runs.store import StudyStore

    store = StudyStore(tmp_path)
    df = pd.DataFrame([{"contender": "cnn", "run_id": "seed0-fold0", "status": "done"}])
    log = tmp_path / "runs" / "cnn" / "seed0-fold0" / "logs" / "csv"
    log.mkdir(parents=True)
    pd.DataFrame({"epoch": [1, 2, 3], "train/loss": [0.7, 0.6, 0.5], "val/loss": [0.71, 0.65, 0.6],
                  "val/auroc": [0.6, 0.7, 0.75]}).to_csv(log / "metrics.csv", index=False)
    plots.training_curves(store, df, ["cnn"], "auroc", tmp_path / "plots")
    ax = seen[0].axes[0]
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_costs_read_with_significant_digits_and_few_engineering_ticks(monkeypatch, tmp_path):
    from bakeoff.report.html import si

    assert (si(355_416.0), si(1.234e9), si(0.5), si(17_957.0)) == ("355 k", "1.23 G", "0.5", "18 k")
    seen = _capture(monkeypatch)
    costs = pd.DataFrame({"latency_ms": [0.0350, 0.0375, 0.0400], "auroc": [0.90, 0.93, 0.95],
                          "n_parameters": [17_957, 886_657, 2_000_000]}, index=["a", "b", "c"])
    plots.quality_vs_cost(costs, ["a", "b", "c"], "auroc", True, tmp_path)
    fig = seen[0]
    fig.canvas.draw()
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert 2 <= len(labels) <= 6 and all(len(x) <= 6 for x in labels), labels  # "35", "37.5": no run-ons
    # below a millisecond in µs, not "35m" ms; parameters in engineering notation
    assert ax.get_xlabel() == "inference latency (µs / sample)" and all(x[-1].isdigit() for x in labels), labels
    assert any(t.get_text().endswith(("k", "M")) for t in fig.axes[1].get_xticklabels())


@pytest.mark.parametrize("hours, unit", [(0.0016, "device-seconds"), (0.4, "device-minutes"),
                                         (12.0, "device-hours")])
def test_training_time_is_shown_in_a_unit_that_fits_it(monkeypatch, tmp_path, hours, unit):
    """A 3-epoch digits study's training took 0.0008-0.0016 device-hours: the axis read "800µ", "1.6m"."""
    seen = _capture(monkeypatch)
    costs = pd.DataFrame({"device_hours": [hours / 2, hours * 0.75, hours], "qwk": [0.55, 0.94, 0.65]},
                         index=["a", "b", "c"])
    plots.quality_vs_cost(costs, ["a", "b", "c"], "qwk", True, tmp_path)
    fig = seen[0]
    fig.canvas.draw()
    ax = fig.axes[0]
    assert ax.get_xlabel() == f"training {unit}"
    values = {"device-seconds": 3600, "device-minutes": 60, "device-hours": 1}[unit] * hours
    ticks = [float(t.get_text().replace("−", "-")) for t in ax.get_xticklabels() if t.get_text()]
    assert ticks and max(ticks) <= values * 1.5 and max(ticks) >= values / 4, (ticks, values)


def test_grad_cam_titles_show_file_names_not_folders():
    assert plots._short_id("images/digit0036.png") == "digit0036.png"
    assert plots._short_id("C:\\data\\x.png") == "x.png"
    assert plots._short_id("a" * 30) == "a" * 17 + "…"


def test_the_significance_map_makes_room_for_the_longest_names(tmp_path):
    """Two contenders with 64-character names (the longest a study accepts): the figure grows with them, so
    matplotlib lays it out (no "Tight layout not applied" warning in the user's terminal; fails without:
    the CI log showed it for the names-at-the-edge study)."""
    import warnings

    names = ["a" * 64, "b" * 63 + "."]
    cells = {a: {b: None if a == b else "inconclusive" for b in names} for a in names}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = plots.significance_plot({"contenders": names, "cells": cells}, "auroc", tmp_path)
    assert path.is_file() and path.with_suffix(".svg").is_file()


def test_ranks_read_as_people_write_them():
    from bakeoff.report.html import _rank

    assert (_rank(1.0), _rank(3), _rank(1.5), _rank(None), _rank(float("nan"))) == ("1", "3", "1.5", "–", "–")


@pytest.mark.parametrize("task, says", [("binary_classification", True), ("multiclass_classification", False)])
def test_the_metric_bars_name_a_threshold_only_where_one_is_used(monkeypatch, tmp_path, task, says):
    seen = _capture(monkeypatch)
    df = pd.DataFrame({"contender": ["a", "b"], "status": ["done", "done"], "test_accuracy": [0.8, 0.9],
                       "test_auroc": [0.85, 0.95]})
    plots.metric_bars(df, ["a", "b"], 0.5, tmp_path, task)
    assert ("threshold 0.5" in seen[0].axes[0].get_title()) == says


def test_the_significance_map_marks_verdicts_about_trained_weights(tmp_path, monkeypatch):
    """One seed: a 'better'/'worse' cell is about the two trained models (comparison.json → scopes); the
    figure says so in the cell (†) and under the map, as the verdict and the JSON do (issue 43 item 4)."""
    texts = []
    real_ax, real_fig = plots.plt.Axes.text, plots.plt.Figure.text

    def recorder(real):
        def record(self, x, y, s, *args, **kwargs):
            texts.append(s)
            return real(self, x, y, s, *args, **kwargs)
        return record

    monkeypatch.setattr(plots.plt.Axes, "text", recorder(real_ax))
    monkeypatch.setattr(plots.plt.Figure, "text", recorder(real_fig))
    names = ["x", "y"]
    cells = {"x": {"x": None, "y": "better"}, "y": {"x": "worse", "y": None}}
    scopes = {"x": {"x": None, "y": "trained weights"}, "y": {"x": "trained weights", "y": None}}
    plots.significance_plot({"contenders": names, "cells": cells, "scopes": scopes}, "auroc", tmp_path)
    assert "better†" in texts and "worse†" in texts and any("one seed" in t for t in texts), texts
    texts.clear()
    recipe = {a: {b: None if a == b else "training recipe" for b in names} for a in names}
    plots.significance_plot({"contenders": names, "cells": cells, "scopes": recipe}, "auroc", tmp_path)
    assert "better" in texts and not any("†" in t or "one seed" in t for t in texts), texts
