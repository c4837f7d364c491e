"""A suite end to end through the CLI: every dataset's study in its own directory, the answer across them in
suite.json with a forest plot, a rerun that trains nothing, ``bakeoff report`` on the suite directory, and
bad suite files refused before training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from bakeoff.stats.meta import across_datasets
from tests.conftest import computed_columns
from tests.report.browser import check_suite_report


def _cli(*args, kill_at=None):
    env = dict(os.environ)
    env.pop("BAKEOFF_KILL_AT", None)
    if kill_at:
        env["BAKEOFF_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, "-m", "bakeoff.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=900, env=env)


def _results(out: Path, name: str) -> pd.DataFrame:
    df = pd.read_csv(out / "datasets" / name / "results.csv")
    return computed_columns(df)


def _suite(tmp_path: Path) -> Path:
    raw = yaml.safe_load(Path("examples/spots_suite.yaml").read_text())
    for entry in raw["datasets"].values():
        entry["data"]["params"].update(n=120)
    raw["datasets"] = dict(list(raw["datasets"].items())[:3])
    raw["protocol"].update(seeds=[0, 1], epochs=1)
    raw["contenders"]["se_resnet3d"]["params"]["base_channels"] = 4
    raw["execution"] = {"checkpoint_every_s": 0}  # a resume checkpoint at every epoch end (the kill test)
    raw["datasets"]["snr4"]["protocol"] = {"batch_size": 16}  # one dataset's own setting: recorded and listed
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("suite")
    suite, out = _suite(root), root / "out"
    proc = _cli("run", suite, "--out", out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return suite, out, proc


def test_a_suite_runs_every_dataset_and_answers_across_them(finished, tmp_path):
    suite, out, proc = finished
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
    assert result["overrides"] == {"snr4": {"protocol": {"batch_size": 16}}}
    assert "except: snr4: {'protocol': {'batch_size': 16}}" in (out / "report.html").read_text().replace("&#x27;", "'")
    run = json.loads(next((out / "datasets" / "snr4" / "runs").glob("*/*/run.json")).read_text())
    assert run["protocol"]["batch_size"] == 16
    before = {p: p.stat().st_mtime_ns for p in out.glob("datasets/*/runs/*/*/predictions.npz")}
    rerun = _cli("run", suite, "--out", out)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert {p: p.stat().st_mtime_ns for p in out.glob("datasets/*/runs/*/*/predictions.npz")} == before
    written = (out / "suite.json").read_bytes()
    report = _cli("report", out)
    assert report.returncode == 0 and "Across 3 datasets" in report.stdout, report.stderr[-2000:]
    tables = _cli("report", out, "--no-plots")  # the same numbers, byte for byte, with or without figures
    assert tables.returncode == 0 and (out / "suite.json").read_bytes() == written, tables.stderr[-2000:]
    import jsonschema  # the published schema (docs/schemas) holds what a real suite writes

    jsonschema.validate(result, json.loads((Path(__file__).resolve().parents[1] / "docs" / "schemas" /
                                            "suite.schema.json").read_text()))
    # status, check, clean and plan take the suite too
    status = _cli("status", out)
    assert status.returncode == 0 and "12 done" in status.stdout and "written" in status.stdout, status.stdout
    check = _cli("check", suite, "--out", out)
    assert check.returncode == 0 and "3 datasets" in check.stdout and "12 runs planned" in check.stdout, check.stderr
    clean = _cli("clean", out, "--dry-run")
    assert clean.returncode == 0 and " ".join(clean.stdout.split()).count("nothing stale") == 3, clean.stdout
    plan = _cli("plan", out, "--sims", "100")
    assert plan.returncode == 0 and plan.stdout.count("se_resnet3d − simple_cnn on auroc") == 3, plan.stderr[-2000:]
    assert "across datasets, se_resnet3d − simple_cnn" in " ".join(plan.stdout.split())


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


def test_a_suite_killed_mid_run_ends_with_the_uninterrupted_results(finished, tmp_path):
    """SIGKILL in the second dataset's runs (each dataset: 4 runs of 3 steps); the same command again trains
    only what was left and ends with the uninterrupted suite's results and answer."""
    suite, ref, _ = finished
    out = tmp_path / "out"
    proc = _cli("run", suite, "--out", out, kill_at="step:17")
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-2000:])
    assert not (out / "suite.json").exists()
    done = {p.parent.parent.parent.parent.name for p in out.glob("datasets/*/runs/*/*/run.json")
            if json.loads(p.read_text())["status"] == "done"}
    assert "snr2" in done and "snr4" not in done, done
    finished_before = {p: p.stat().st_mtime_ns for p in out.glob("datasets/snr2/runs/*/*/predictions.npz")}
    again = _cli("run", suite, "--out", out)
    assert again.returncode == 0, again.stderr[-2000:]
    assert {p: p.stat().st_mtime_ns for p in finished_before} == finished_before  # not trained again
    for name in ("snr2", "snr3", "snr4"):
        pd.testing.assert_frame_equal(_results(out, name), _results(ref, name))
    mine, theirs = (json.loads((d / "suite.json").read_text())["pairs"][0] for d in (out, ref))
    assert (mine["difference"], mine["ci_low"], mine["verdict"]) == (theirs["difference"], theirs["ci_low"],
                                                                     theirs["verdict"])


@pytest.mark.engine
def test_a_local_ray_takes_every_datasets_runs_at_once(tmp_path):
    """execution.workers: 4 (a real local Ray): the datasets' runs share one pool, so every run of both
    datasets is submitted before the first one finishes (one dataset after another, the second dataset's
    runs could only start after the first's had finished)."""
    from bakeoff.runs.events import Finished, Planned, Started
    from bakeoff.suite import Suite

    raw = yaml.safe_load(_suite(tmp_path).read_text())
    raw["datasets"] = dict(list(raw["datasets"].items())[:2])
    raw["protocol"]["seeds"] = [0]
    raw["execution"] = {"workers": 4, "threads_per_run": 1}
    path = tmp_path / "ray_suite.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    out, events = tmp_path / "out", []
    result = Suite.from_yaml(path).run(out, events.append)
    kinds = [type(e).__name__ for e in events]
    assert isinstance(events[0], Planned) and len(events[0].runs) == 4
    started = [i for i, e in enumerate(events) if isinstance(e, Started)]
    finished = [i for i, e in enumerate(events) if isinstance(e, Finished)]
    assert len(started) == len(finished) == 4 and max(started) < min(finished), kinds
    pids = {json.loads(p.read_text())["pid"] for p in out.glob("datasets/*/runs/*/*/run.json")}
    assert os.getpid() not in pids  # trained in Ray's workers
    assert (out / "report.html").is_file() and result["cost"]["runs"] == 4


def test_the_real_image_example_suite_runs_and_its_report_renders(tmp_path):
    """examples/real_suite.yaml (digits and stardist nuclei, shipped by packages) with one command (two epochs
    and three seeds here to keep CI short): every dataset's study, the answer, and a page with forest plot, CD diagram and
    links in Chromium."""
    out = tmp_path / "real"
    proc = _cli("run", "examples/real_suite.yaml", "--out", out, "--set", "protocol.epochs=2",
                "--set", "protocol.seeds=[0,1,2]")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((out / "suite.json").read_text())
    assert result["datasets"] == ["digits_parity", "digits_low_high", "digits_3_vs_8", "nuclei"]
    assert result["pairs"][0]["prediction_interval"] is not None and result["cost"]["runs"] == 24
    scores = result["summaries"]["scores"]  # real images, learned (3 vs 8: 250 noisy images, 2 epochs, barely)
    assert all(min(scores[n].values()) > 0.8 for n in ("digits_parity", "nuclei")), scores
    assert min(scores["digits_low_high"].values()) > 0.7, scores
    assert min(scores["digits_3_vs_8"].values()) > 0.5, scores
    seen = check_suite_report(out, tmp_path / "real_suite.png")
    assert {c.split(":")[0] for c in seen["captions"]} >= {"forest se_resnet vs resnet",
                                                           "Critical-difference diagram", "Performance profiles"}
    assert len(seen["links"]) == 4


def test_datasets_with_different_primary_metrics_need_a_stated_normalisation(tmp_path):
    from bakeoff.errors import BakeoffError
    from bakeoff.suite import Suite

    raw = yaml.safe_load(_suite(tmp_path).read_text())
    raw["datasets"]["snr3"]["evaluation"] = {"primary": "average_precision"}
    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(BakeoffError, match="the primary metrics differ .*normalise: relative"):
        Suite.from_yaml(path)
    raw["normalise"] = "relative"
    path.write_text(yaml.safe_dump(raw))
    suite = Suite.from_yaml(path)
    assert suite.studies["snr3"].evaluation.primary == "average_precision"
    assert suite.studies["snr2"].evaluation.primary == "auroc"
    raw["datasets"]["snr4"]["evaluation"] = {"primary": "brier"}  # lower is better: cannot be pooled with AUROC
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(BakeoffError, match="differ in direction"):
        Suite.from_yaml(path)
