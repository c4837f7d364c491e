"""A suite end to end through the CLI: every dataset's study in its own directory, the answer across them in
suite.json with a forest plot, a rerun that trains nothing, ``bakeoff report`` on the suite directory, and
bad suite files refused before training."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from bakeoff.stats.meta import across_datasets
from tests.report.browser import check_suite_report


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "bakeoff.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=900)


def _suite(tmp_path: Path) -> Path:
    raw = yaml.safe_load(Path("examples/spots_suite.yaml").read_text())
    for entry in raw["datasets"].values():
        entry["data"]["params"].update(n=120)
    raw["datasets"] = dict(list(raw["datasets"].items())[:3])
    raw["protocol"].update(seeds=[0, 1], epochs=1)
    raw["contenders"]["se_resnet3d"]["params"]["base_channels"] = 4
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_a_suite_runs_every_dataset_and_answers_across_them(tmp_path):
    suite, out = _suite(tmp_path), tmp_path / "out"
    proc = _cli("run", suite, "--out", out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((out / "suite.json").read_text())
    assert result["datasets"] == ["snr2", "snr3", "snr4"] and len(result["pairs"]) == 1
    pair = result["pairs"][0]
    per = {}
    for name in result["datasets"]:  # each dataset is a whole study, and the pooled numbers come from them
        comp = json.loads((out / "datasets" / name / "comparison.json").read_text())
        assert (out / "datasets" / name / "report.html").is_file()
        per[name] = comp["pairs"][0]
    again = across_datasets(pair["a"], pair["b"], [p["difference"] for p in per.values()],
                            [p["se"] for p in per.values()], list(per))
    assert pair["difference"] == again["difference"] and pair["prediction_interval"] == again["prediction_interval"]
    assert pair["verdict"] == again["verdict"]  # one pair: Holm changes nothing
    assert sum(pair["wins"].values()) == 3
    assert (out / "plots" / "forest_se_resnet3d_vs_simple_cnn.png").is_file()
    assert "Across 3 datasets on auroc" in proc.stdout
    # the summaries recomputed from the datasets' saved runs (results.csv)
    runs = {n: {c: list(g["test_auroc"]) for c, g in pd.read_csv(out / "datasets" / n / "results.csv").groupby("contender")}
            for n in result["datasets"]}
    summaries = result["summaries"]
    for c in ("simple_cnn", "se_resnet3d"):
        flat = np.concatenate([runs[n][c] for n in runs])
        assert summaries["estimates"]["iqm"][c]["value"] == pytest.approx(stats.trim_mean(flat, 0.25))
        assert summaries["scores"]["snr3"][c] == pytest.approx(np.mean(runs["snr3"][c]))
    assert result["cost"]["runs"] == 12
    # the suite's report in a real browser: the answer, forest plot, CD diagram, links to every dataset's report
    seen = check_suite_report(out, tmp_path / "suite.png")
    assert len(seen["verdicts"]) == 1 and pair["verdict"] in seen["verdicts"][0]
    assert any(c.startswith("forest") for c in seen["captions"])
    assert any(c.startswith("Critical-difference diagram") for c in seen["captions"])
    assert seen["links"] == [(out / "datasets" / n / "report.html").resolve().as_uri() for n in result["datasets"]]
    assert "3 datasets (snr2, snr3, snr4)" in seen["methods"] and "Wilcoxon" in seen["methods"]
    before = {p: p.stat().st_mtime_ns for p in out.glob("datasets/*/runs/*/*/predictions.npz")}
    rerun = _cli("run", suite, "--out", out)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert {p: p.stat().st_mtime_ns for p in out.glob("datasets/*/runs/*/*/predictions.npz")} == before
    report = _cli("report", out)
    assert report.returncode == 0 and "Across 3 datasets" in report.stdout, report.stderr[-2000:]


def test_bad_suite_files_are_refused_before_training(tmp_path):
    suite = _suite(tmp_path)
    raw = yaml.safe_load(suite.read_text())
    raw["datasets"]["snr2"]["study"] = "other.yaml"
    suite.write_text(yaml.safe_dump(raw))
    proc = _cli("run", suite, "--out", tmp_path / "out")
    assert proc.returncode == 2 and "datasets.snr2" in proc.stderr and "expected exactly one of data:" in proc.stderr
    raw["datasets"] = {"only": raw["datasets"]["snr3"]}
    suite.write_text(yaml.safe_dump(raw))
    proc = _cli("run", suite, "--out", tmp_path / "out")
    assert proc.returncode == 2 and "datasets" in proc.stderr and "at least 2" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()
