"""What the figures say, read from the matplotlib figures themselves (captured before they are saved):
class names on the confusion matrices, whole epochs on the training curves."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bakeoff.report import plots


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
    assert 2 <= len(labels) <= 6 and all(len(x) <= 6 for x in labels), labels  # "35m", "37.5m": no run-ons


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
