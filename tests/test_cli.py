"""The CLI end to end on a tiny study: files, recomputed metrics, resume, report, status, bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn import metrics as skm

from tests.conftest import write_study

BAKEOFF = [sys.executable, "-m", "bakeoff.cli"]


def bakeoff(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([*BAKEOFF, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    from tests.conftest import TINY_STUDY

    root = tmp_path_factory.mktemp("cli")
    study = write_study(root / "tiny.yaml", TINY_STUDY)
    out = root / "out"
    proc = bakeoff("run", study, "--out", out)
    assert proc.returncode == 0, proc.stderr
    return study, out, proc


def test_run_writes_every_output(finished):
    _, out, proc = finished
    assert "Δ se − cnn" in proc.stdout and "auroc (primary)" in proc.stdout
    resolved = yaml.safe_load((out / "study.yaml").read_text())
    assert resolved["protocol"]["precision"] == "32-true"  # defaults are filled in
    for name in ("results.csv", "summary.csv", "plots/training_curves.png", "plots/metric_bars.png",
                 "plots/confusion_matrices.png", "plots/roc_curves.png"):
        assert (out / name).is_file(), name
    for contender in ("cnn", "se"):
        for seed in (0, 1):
            run = out / "runs" / contender / f"seed{seed}-fold0"
            for name in ("run.json", "predictions.npz", "metrics.json", "checkpoints/best.ckpt",
                         "logs/csv/metrics.csv"):
                assert (run / name).exists(), run / name
            assert list((run / "logs" / "tensorboard").glob("events.out.tfevents.*"))
            info = json.loads((run / "run.json").read_text())
            assert info["status"] == "done" and info["versions"]["torch"]
            assert info["n_parameters"] > 0 and info["train_time_s"] > 0 and info["speed"]["latency_ms"] > 0


def test_output_that_is_not_a_terminal_gets_timestamped_progress_lines(finished):
    """Captured output (a log file, CI) is not a terminal: every run's start and end is a timestamped line
    with the runs done of the total and, once a run has finished, an ETA."""
    import re

    _, _, proc = finished
    lines = proc.stdout.splitlines()
    starts = [ln for ln in lines if re.match(r"\[\d\d:\d\d:\d\d\] start (cnn|se)/seed\d-fold0 \(\d/4 runs", ln)]
    ends = [ln for ln in lines if re.match(r"\[\d\d:\d\d:\d\d\] done (cnn|se)/seed\d-fold0, best val/auroc "
                                           r"\d\.\d{4} \(\d/4 runs, ETA \d+ (s|min)\)", ln)]
    assert len(starts) == 4 and len(ends) == 4, proc.stdout[:3000]
    assert "(4/4 runs, ETA 0 s)" in ends[-1]


def test_an_unfinished_study_is_reported_as_incomplete_not_failed(finished, tmp_path):
    """One run interrupted (its process gone), one not started: the report says so everywhere, computes the
    verdict on the runs both contenders share, marks it provisional, and no numpy warning reaches the user."""
    _, out, _ = finished
    part = tmp_path / "part"
    shutil.copytree(out, part)
    shutil.rmtree(part / "runs" / "cnn" / "seed1-fold0")  # pending
    info_path = part / "runs" / "se" / "seed1-fold0" / "run.json"
    info = json.loads(info_path.read_text())
    info.update(status="running", pid=2 ** 22 + 12345)  # no such process: interrupted
    info_path.write_text(json.dumps(info))
    (part / "finished_stamp.json").unlink(missing_ok=True)
    proc = bakeoff("report", part)
    assert proc.returncode == 0, proc.stderr[-2000:]
    flat = " ".join(proc.stdout.split())
    assert "incomplete: 2 of 4 runs done (1 pending, 1 interrupted)" in flat or \
        "incomplete: 2 of 4 runs done (1 interrupted, 1 pending)" in flat, flat
    assert "failed:" not in flat and "Warning" not in proc.stderr and "empty slice" not in proc.stderr, proc.stderr
    comparison = json.loads((part / "comparison.json").read_text())
    assert comparison["incomplete"]["done"] == 2 and comparison["incomplete"]["planned"] == 4
    assert {x["run"] for x in comparison["incomplete"]["not_done"]} == {"cnn/seed1-fold0", "se/seed1-fold0"}
    assert comparison["pairs"][0]["n_runs"] == 1  # the run both contenders share
    page = (part / "report.html").read_text()
    assert "⚠ incomplete: 2 of 4 runs done" in page and "se/seed1-fold0 (interrupted)" in page
    assert "unfinished when this was written: 2 of 4 planned runs had finished (cnn: 1, se: 1)" in \
        " ".join((part / "methods.txt").read_text().split())
    shutil.rmtree(part / "runs" / "se" / "seed0-fold0")  # a contender with no finished run at all
    proc = bakeoff("report", part)
    assert proc.returncode == 0 and "Warning" not in proc.stderr, proc.stderr[-2000:]
    assert "incomplete: 1 of 4 runs done" in " ".join(proc.stdout.split())


def test_collapsed_runs_are_flagged_from_their_saved_predictions(finished):
    """The tiny study's runs are trained for two epochs on 240 noisy patches: a run predicting one class for
    every test sample is flagged in results.csv, comparison.json and the terminal, recomputed here."""
    _, out, proc = finished
    from sklearn.metrics import roc_auc_score

    df = pd.read_csv(out / "results.csv").fillna({"health": "", "val_chance": ""})
    assert df["health"].astype(bool).any()  # (on this data some runs do collapse: the check is exercised)
    comparison = json.loads((out / "comparison.json").read_text())
    for _, row in df.iterrows():
        with np.load(out / "runs" / row.contender / row.run_id / "predictions.npz") as f:
            hard = (f["test_probs"] >= 0.5).astype(int)
            val_y, val_p = f["val_y"], f["val_probs"]
        one_class = max(np.mean(hard), 1 - np.mean(hard)) >= 0.98
        assert bool(row.health) == one_class, (row.contender, row.run_id, row.health)
        if row.val_chance:  # the validation AUROC recomputed with sklearn is what the note says
            assert f"auroc {roc_auc_score(val_y, val_p):.3f}" in row.val_chance
        key = f"{row.contender}/{row.run_id}"
        assert (key in comparison.get("health", {})) == (one_class or bool(row.val_chance))
        if one_class:
            assert f"run health: {key}: collapsed" in " ".join(proc.stdout.split())


def test_study_eta_counts_what_is_left_at_each_contenders_pace():
    from bakeoff.runs.spec import RunSpec
    from bakeoff.runs.status import RunState, study_eta

    runs = [RunSpec(contender=c, seed=s, fold=0, hash=f"{c}{s}") for c in ("a", "b")
            for s in (0, 1, 2)]
    states = [RunState("done", wall_time_s=10.0), RunState("done", wall_time_s=20.0), RunState("pending"),
              RunState("running", eta_s=5.0), RunState("pending"), RunState("interrupted")]
    assert study_eta(runs, states) == pytest.approx(15.0 + 5.0 + 15.0 + 15.0)  # b: none done yet, a's pace
    states[4] = RunState("done", wall_time_s=100.0)
    assert study_eta(runs, states) == pytest.approx(15.0 + 5.0 + 100.0)
    assert study_eta(runs, [RunState("pending")] * 6) is None


def test_results_recompute_from_predictions(finished):
    _, out, _ = finished
    df = pd.read_csv(out / "results.csv")
    assert len(df) == 4 and set(df["status"]) == {"done"}
    assert df.loc[df.contender == "cnn", "n_parameters"].iloc[0] == 17_957
    for _, row in df.iterrows():
        with np.load(out / "runs" / row.contender / row.run_id / "predictions.npz") as f:
            y, p = f["test_y"], f["test_probs"]
            assert len(set(f["test_ids"]) & set(f["val_ids"])) == 0
        hard = (p >= 0.5).astype(int)
        assert row.test_auroc == pytest.approx(skm.roc_auc_score(y, p), abs=1e-6)
        assert row.test_accuracy == pytest.approx(skm.accuracy_score(y, hard), abs=1e-6)
        assert row.test_f1 == pytest.approx(skm.f1_score(y, hard, zero_division=0), abs=1e-6)
        assert row.test_mcc == pytest.approx(skm.matthews_corrcoef(y, hard), abs=1e-6)
        assert row.test_average_precision == pytest.approx(skm.average_precision_score(y, p), abs=1e-6)
        assert row.test_brier == pytest.approx(skm.brier_score_loss(y, p), abs=1e-6)
    summary = pd.read_csv(out / "summary.csv").set_index(["contender", "metric"])
    for c in ("cnn", "se"):
        vals = df.loc[df.contender == c, "test_auroc"]
        assert summary.loc[(c, "test_auroc"), "mean"] == pytest.approx(vals.mean())
        assert summary.loc[(c, "test_auroc"), "std"] == pytest.approx(vals.std(ddof=1))
        assert summary.loc[(c, "test_auroc"), "ci_low"] < vals.mean() < summary.loc[(c, "test_auroc"), "ci_high"]


def test_same_split_for_every_contender(finished):
    _, out, _ = finished
    infos = [json.loads(p.read_text()) for p in out.glob("runs/*/*/run.json")]
    assert len({json.dumps(i["split"], sort_keys=True) for i in infos}) == 1


def test_rerun_resumes_and_report_rebuilds_without_training(finished):
    study, out, _ = finished
    ckpt = out / "runs" / "cnn" / "seed0-fold0" / "checkpoints" / "best.ckpt"
    before = ckpt.stat().st_mtime_ns
    proc = bakeoff("run", study, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert ckpt.stat().st_mtime_ns == before  # nothing retrained
    proc = bakeoff("run", study, "--out", out, "--set", "evaluation.min_effect=0.05")
    assert proc.returncode == 0, proc.stderr
    assert ckpt.stat().st_mtime_ns == before  # a new evaluation reuses the runs
    assert json.loads((out / "comparison.json").read_text())["min_effect"] == 0.05
    (out / "results.csv").unlink()
    (out / "plots" / "roc_curves.png").unlink()
    proc = bakeoff("report", out)
    assert proc.returncode == 0, proc.stderr
    assert (out / "results.csv").is_file() and (out / "plots" / "roc_curves.png").is_file()
    assert ckpt.stat().st_mtime_ns == before
    proc = bakeoff("status", out)
    assert proc.returncode == 0 and proc.stdout.count("done") >= 4 and "4 done" in proc.stdout


def _imported(*args: str) -> set[str]:
    """Top-level modules a CLI command imports (python -X importtime)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "bakeoff.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in proc.stderr.splitlines()
            if line.startswith("import time:")}


@pytest.mark.parametrize("field, value, says", [
    ("model", "bakeoff:se_resnet3d", "contenders.se.model: unknown model 'bakeoff:se_resnet3d' (did you mean "
                                     "'bakeoff:se_resnet'"),
    ("loss", "dice", "protocol.loss.name: dice is for segmentation and particle picking; this study is binary"),
    ("loss", "bcee", "protocol.loss.name: unknown loss 'bcee' (did you mean 'bce'"),
    ("primary", "aurocc", "evaluation.primary: unknown metric 'aurocc' for binary_classification (did you mean "
                          "'auroc'?)"),
])
def test_check_names_a_typo_before_torch_or_the_data(tmp_path, tiny_raw, field, value, says):
    """A misspelt built-in model, loss or metric is answered from the study file alone: no torch, no data."""
    if field == "model":
        tiny_raw["contenders"]["se"]["model"] = value
    elif field == "loss":
        tiny_raw["protocol"]["loss"]["name"] = value
    else:
        tiny_raw["evaluation"]["primary"] = value
    tiny_raw["data"] = {"source": f"npz:{tmp_path / 'not_read.npz'}"}  # never read: it does not exist
    study = write_study(tmp_path / "s.yaml", tiny_raw)
    for cmd in ("check", "run"):
        args = (cmd, study) if cmd == "check" else (cmd, study, "--out", tmp_path / "out")
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "bakeoff.cli", *map(str, args)],
                              capture_output=True, text=True, timeout=120)
        lines = proc.stderr.splitlines()
        mods = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in lines if line.startswith("import time:")}
        message = " ".join(line for line in lines if not line.startswith("import time:"))
        assert proc.returncode == 2 and says in " ".join(message.split()), (cmd, message)
        assert not mods & {"torch", "lightning", "monai", "timm", "sklearn"}, (cmd, sorted(mods))
    assert not (tmp_path / "out").exists()


def test_help_and_status_do_not_import_torch(finished):
    study, out, _ = finished
    same = ("--set", "evaluation.min_effect=0.05")
    # the directory last run with these settings, whichever tests ran before (two test workers split a file)
    assert bakeoff("run", study, "--out", out, *same).returncode == 0
    for args in (("--help",), ("status", out), ("run", study, "--out", out, *same)):  # a rerun: nothing changed
        mods = _imported(*args)
        assert not mods & {"torch", "lightning", "matplotlib", "monai", "timm"}, (args, sorted(mods))
    assert (out / "plan.json").is_file()
    again = bakeoff("run", study, "--out", out, *same)
    assert again.returncode == 0 and "all 4 runs are done and nothing changed" in again.stdout, again.stdout
    assert "se vs cnn on auroc" in again.stdout
    changed = bakeoff("run", study, "--out", out)  # another setting: the report is redone (runs are reused)
    assert changed.returncode == 0 and "nothing changed" not in changed.stdout, changed.stderr[-2000:]


def test_report_reads_saved_scores_without_torch(finished, tmp_path):
    """`bakeoff report` of saved predictions reads each run's kept scores (scores.npz: metrics, confusion
    matrices, chance notes, calibration error) and imports neither torch nor torchmetrics; the numbers are
    those recomputed from predictions.npz when the kept scores are gone."""
    _, out, _ = finished
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    mods = _imported("report", copy)
    assert not mods & {"torch", "lightning", "torchmetrics", "monai", "timm"}, sorted(mods)
    kept = pd.read_csv(copy / "results.csv")
    kept_comp = json.loads((copy / "comparison.json").read_text())
    removed = list(copy.glob("runs/*/*/scores.npz"))
    assert len(removed) == 4
    for f in removed:
        f.unlink()
    proc = bakeoff("report", copy, "--no-plots")  # recomputed with torchmetrics, and kept again
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert all(f.is_file() for f in removed)
    pd.testing.assert_frame_equal(pd.read_csv(copy / "results.csv"), kept)
    comp = json.loads((copy / "comparison.json").read_text())
    assert comp["pairs"] == kept_comp["pairs"] and comp["calibration"] == kept_comp["calibration"]
    assert "val_chance" in kept.columns and "health" in kept.columns


def test_failed_run_is_retried_not_cached(finished, tmp_path):
    study, out, _ = finished
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    run_json = copy / "runs" / "se" / "seed1-fold0" / "run.json"
    info = json.loads(run_json.read_text())
    info["status"] = "failed"
    run_json.write_text(json.dumps(info))
    untouched = copy / "runs" / "cnn" / "seed0-fold0" / "checkpoints" / "best.ckpt"
    before = untouched.stat().st_mtime_ns
    proc = bakeoff("run", study, "--out", copy)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(run_json.read_text())["status"] == "done"
    assert untouched.stat().st_mtime_ns == before


def test_list_losses_shows_tasks_and_params():
    proc = bakeoff("list", "losses", "*tversky*")
    assert proc.returncode == 0, proc.stderr
    assert "balanced_softmax_tversky" in proc.stdout and "tau=1.0" in proc.stdout and "dense" in proc.stdout
    assert "dice_ce" not in proc.stdout
    bad = bakeoff("list", "lossez")
    assert bad.returncode == 2 and "expected models, losses, sources, metrics or tasks" in bad.stderr
    sources = bakeoff("list", "sources")
    assert sources.returncode == 0, sources.stderr
    for name in ("builtin:spots3d", "npz", "csv", "folder", "builtin:organelles2d", "npz_dir", "tiff_dir"):
        assert name in sources.stdout, name
    metrics = bakeoff("list", "metrics", "*hd95*")
    assert metrics.returncode == 0, metrics.stderr
    rows = [line for line in metrics.stdout.splitlines() if "hd95" in line and "lower" in line]
    assert len(rows) == 2 and "auroc" not in metrics.stdout  # mean_hd95 (segmentation), hd95 (particles)
    tasks = bakeoff("list", "tasks")
    assert tasks.returncode == 0 and "ordinal_classification" in tasks.stdout and "particle_f1" in tasks.stdout


def test_models_lists_the_registry():
    proc = bakeoff("models")
    assert proc.returncode == 0 and "bakeoff:simple_cnn3d" in proc.stdout and "bakeoff:se_resnet" in proc.stdout
    proc = bakeoff("models", "*DenseNet*", "--provider", "monai")
    assert proc.returncode == 0 and "monai:DenseNet121" in proc.stdout


def _assert_clean_error(proc, *fragments):
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])


def _npz(tmp_path, name, **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize("case", ["unknown_model", "typo_key", "length", "rank", "labels", "nan", "one_class",
                                  "missing_file", "bad_set"])
def test_bad_input_fails_cleanly(case, tmp_path, tiny_raw):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 9, 11, 11)), np.tile([0, 1], 30)
    extra: list[str] = []
    expect: tuple[str, ...]
    if case == "unknown_model":
        tiny_raw["contenders"]["se"]["model"] = "bakeoff:se_resnet3d"
        expect = ("unknown model 'bakeoff:se_resnet3d'", "did you mean 'bakeoff:se_resnet'")
    elif case == "typo_key":
        tiny_raw["protocol"]["batchsize"] = 8
        expect = ("study.yaml", "protocol.batchsize: unknown key")
    elif case == "length":
        tiny_raw["data"] = {"source": "npz:" + _npz(tmp_path, "d.npz", X=X, y=y[:-3])}
        expect = ("X has 60 samples but y has 57",)
    elif case == "rank":
        tiny_raw["data"] = {"source": "npz:" + _npz(tmp_path, "d.npz", X=X[:, 0, 0], y=y)}
        expect = ("X has shape (60, 11)",)
    elif case == "labels":
        tiny_raw["data"] = {"source": "npz:" + _npz(tmp_path, "d.npz", X=X, y=y * 2)}
        expect = ("labels [2] are outside {0, 1}",)
    elif case == "nan":
        X[3, 0, 0, 0] = np.nan
        tiny_raw["data"] = {"source": "npz:" + _npz(tmp_path, "d.npz", X=X, y=y)}
        expect = ("NaN or inf", "[3]")
    elif case == "one_class":
        tiny_raw["data"] = {"source": "npz:" + _npz(tmp_path, "d.npz", X=X, y=np.zeros(60, int))}
        expect = ("expected at least two classes",)
    elif case == "missing_file":
        tiny_raw["data"] = {"source": "npz:nothere.npz"}
        expect = ("nothere.npz not found",)
    else:
        extra = ["--set", "protocol.epochs=zero"]
        expect = ("protocol.epochs", "got 'zero'")
    study = write_study(tmp_path / "study.yaml", tiny_raw)
    out = tmp_path / "out"
    proc = bakeoff("run", study, "--out", out, *extra)
    _assert_clean_error(proc, *expect)
    assert not out.exists()  # nothing was written for a study that cannot start


def test_debug_shows_the_traceback(tmp_path, tiny_raw):
    tiny_raw["contenders"]["se"]["model"] = "nonexistent_net"
    study = write_study(tmp_path / "study.yaml", tiny_raw)
    proc = bakeoff("run", study, "--out", tmp_path / "out", "--debug")
    assert proc.returncode != 0 and "Traceback" in proc.stderr
    # the option is what counts, not the word on the command line: here "--debug" is the --out value
    proc = bakeoff("run", study, "--out", "--debug", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "nonexistent_net" in proc.stderr


def test_other_studys_directory_is_never_overwritten(finished, tmp_path):
    study, out, _ = finished
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    proc = bakeoff("run", study, "--out", out, "--set", "protocol.epochs=3")
    _assert_clean_error(proc, f"--out {out}", "holds results of 'tiny' with different settings")
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == {p: t for p, t in before.items() if p.name != ".lock"}
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    _assert_clean_error(bakeoff("run", study, "--out", stranger), "not a bakeoff study directory")
    assert (stranger / "notes.txt").read_text() == "mine"
    _assert_clean_error(bakeoff("report", tmp_path / "nowhere"), "no study.yaml here")


def test_leakage_is_refused_unless_allowed_and_then_recorded(tmp_path, tiny_raw):
    """Pixel-identical samples in two parts of a split: refused (one line naming the twin and the fix)
    unless data.allow_duplicates, which keeps them with a warning and lists them in data_checks."""
    from bakeoff.runs.context import StudyContext
    from bakeoff.tasks import validate_study

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 9, 11, 11)), np.tile([0, 1], 30)
    X[1::2][:10] = X[1]  # ten copies of one positive: some land in different parts
    tiny_raw["data"] = {"source": "npz:" + _npz(tmp_path, "d.npz", X=X, y=y)}
    study = write_study(tmp_path / "study.yaml", tiny_raw)
    _assert_clean_error(bakeoff("check", study), "pixel-identical twin", "data.allow_duplicates: true")
    assert not (tmp_path / "out").exists()
    tiny_raw["data"]["allow_duplicates"] = True
    with pytest.warns(UserWarning, match="pixel-identical twin"):
        checks = StudyContext(validate_study(tiny_raw)).data_checks
    assert checks["exact_duplicates"] and all(d["part"] != d["duplicate_part"] for d in checks["exact_duplicates"])


def test_plan_reads_the_pilot_and_verdicts_recompute_from_predictions(finished, tmp_path):
    """`bakeoff plan` on the finished study; the pair's interval recomputed from predictions.npz."""
    from bakeoff.config import EvaluationConfig
    from tests.stats.helpers import Sample, compare

    _, out, _ = finished
    comp = json.loads((out / "comparison.json").read_text())
    (pair,) = comp["pairs"]
    preds = {c: {s: np.load(out / "runs" / c / f"seed{s}-fold0" / "predictions.npz") for s in (0, 1)}
             for c in ("cnn", "se")}
    ids = preds["cnn"][0]["test_ids"]
    runs = Sample(y={0: preds["cnn"][0]["test_y"]}, a={(s, 0): preds["se"][s]["test_probs"] for s in (0, 1)},
                      b={(s, 0): preds["cnn"][s]["test_probs"] for s in (0, 1)}, ids={0: ids})
    again = compare(runs, "se", "cnn", EvaluationConfig(primary="auroc"), extras=False)
    assert (pair["ci_low"], pair["ci_high"], pair["p_value"]) == pytest.approx(
        (again["ci_low"], again["ci_high"], again["p_value"]), rel=1e-9)
    assert pair["design"]["test_sets"] == "single" and pair["df"] > 0
    summary = pd.read_csv(out / "summary.csv").set_index(["contender", "metric"])
    assert summary.loc[("se", "test_auroc"), "ci_low"] == pytest.approx(pair["contenders"]["se"]["ci_low"])
    # no interval in summary.csv outside its metric's range (costs: never below 0)
    from bakeoff.tasks import metric_info

    for (_, col), row in summary.iterrows():
        if not np.isfinite(row["ci_low"]):
            continue
        name = col.split("_", 1)[1] if col.startswith(("test_", "val_")) else None
        lo, hi = metric_info(name, "binary_classification").bounds if name else (0.0, float("inf"))
        assert lo <= row["ci_low"] <= row["ci_high"] <= hi, (col, row)
    plan_json = tmp_path / "plan.json"
    proc = bakeoff("plan", out, "--seeds", "2,5", "--test-factors", "1,4", "--sims", "300", "--min-effect", "0.01",
                   "--effect", "0.05", "--out", plan_json)
    assert proc.returncode == 0, proc.stderr
    assert "se − cnn on auroc" in proc.stdout and "test samples" in proc.stdout
    grid = json.loads(plan_json.read_text())["pairs"][0]["grid"]
    n = len(ids)
    assert {(r["seeds"], r["test_units"]) for r in grid} == {(2, n), (2, 4 * n), (5, n), (5, 4 * n)}
    by = {(r["seeds"], r["test_units"]): r for r in grid}
    assert by[5, 4 * n]["half_width"] < by[2, n]["half_width"]  # more of both narrows the interval
    # predictive power on common random numbers: for a difference beyond the margin, more seeds or more test
    # samples do not lower it (below the margin, more data rightly call it 'better' less often); within 3 of
    # the 300 studies, as a study with more seeds has another t quantile and can fall just short where the
    # smaller one just passed
    slack = 3 / 300 + 1e-9
    assert by[5, n]["power"] >= by[2, n]["power"] - slack and by[5, 4 * n]["power"] >= by[2, 4 * n]["power"] - slack
    assert by[2, 4 * n]["power"] >= by[2, n]["power"] - slack and by[5, 4 * n]["power"] >= by[5, n]["power"] - slack
    assert all(r["power_range"][0] <= r["power_range"][1] for r in grid)
    assert json.loads(plan_json.read_text())["pairs"][0]["verdict"] == "better"
    assert "P(verdict 'better' beyond ±0.01)" in " ".join(proc.stdout.split())
    # a negative effect on a higher-is-better metric: the power shown is that of the verdict 'worse' (it was
    # labelled 'better', whose power there is nil)
    proc = bakeoff("plan", out, "--seeds", "2,5", "--test-factors", "1,4", "--sims", "300", "--min-effect", "0.01",
                   "--effect", "-0.05", "--out", plan_json)
    assert proc.returncode == 0, proc.stderr
    flat = " ".join(proc.stdout.split())
    assert "P(verdict 'worse' beyond ±0.01)" in flat and "verdict 'worse' beyond the margin" in flat
    assert json.loads(plan_json.read_text())["pairs"][0]["verdict"] == "worse"
    # an unfinished study (se's second seed not done, no comparison.json yet) is planned from its finished
    # runs; with one seed in common it cannot estimate seed variance and says what would
    partial = tmp_path / "partial"
    shutil.copytree(out, partial)
    shutil.rmtree(partial / "runs" / "se" / "seed1-fold0")
    (partial / "comparison.json").unlink()
    proc = bakeoff("plan", partial, "--sims", "200")
    assert proc.returncode == 0, proc.stderr
    flat = " ".join(proc.stdout.split())
    assert "reading the finished runs" in flat and "cannot plan from this pilot" in flat and "train 3 seeds" in flat
    proc = bakeoff("plan", partial, "--sims", "200", "--seed-sd", "0.01", "--seeds", "2,3", "--test-factors", "1",
                   "--out", plan_json)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(plan_json.read_text())["pairs"][0]["seed_sd"] == 0.01
    _assert_clean_error(bakeoff("plan", tmp_path), "comparison.json", "not found")
    _assert_clean_error(bakeoff("plan", out, "--power", "2"), "--power")


def test_report_with_and_without_figures_writes_the_same_comparison(finished, tmp_path):
    """Statistics live in stats/ (``stats.study.study_result``): `bakeoff report --no-plots` and `bakeoff
    report` write byte-identical comparison.json (rank stability, significance map and calibration
    included), summary.csv, intervals.csv and results.csv."""
    import shutil

    _, out, _ = finished
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    files = ("comparison.json", "summary.csv", "intervals.csv", "results.csv")
    assert bakeoff("report", copy, "--no-plots").returncode == 0
    bare = {f: (copy / f).read_bytes() for f in files}
    assert bakeoff("report", copy).returncode == 0
    for f in files:
        assert (copy / f).read_bytes() == bare[f], f
    comp = json.loads(bare["comparison.json"])
    import jsonschema  # the published schema (docs/schemas) holds what a real study writes

    schema = json.loads((Path(__file__).resolve().parents[1] / "docs" / "schemas" / "comparison.schema.json").read_text())
    jsonschema.validate(comp, schema)
    assert {"rank_stability", "significance_map", "calibration"} <= set(comp), sorted(comp)
    assert set(comp["calibration"]["ece"]) == {"cnn", "se"} and comp["calibration"]["curves"]["se"]["confidence"]


def test_check_names_a_file_mistake_before_reading_any_data(tmp_path, tiny_raw):
    """A model or metric typo is reported before the data are read: here the data file does not exist,
    and the answer is still about the name (with its close match)."""
    tiny_raw["data"] = {"source": f"npz:{tmp_path / 'not_there.npz'}"}
    tiny_raw["contenders"]["se"]["model"] = "bakeoff:se_resnt"
    proc = bakeoff("check", write_study(tmp_path / "s.yaml", tiny_raw))
    assert proc.returncode == 2 and "contenders.se.model" in proc.stderr and "se_resnet" in proc.stderr, proc.stderr
    tiny_raw["contenders"]["se"]["model"] = "bakeoff:se_resnet"
    tiny_raw["evaluation"]["primary"] = "aurc"
    proc = bakeoff("check", write_study(tmp_path / "s.yaml", tiny_raw))
    assert proc.returncode == 2 and "evaluation.primary" in proc.stderr and "did you mean 'auroc'" in proc.stderr
    del tiny_raw["evaluation"]["primary"]
    proc = bakeoff("check", write_study(tmp_path / "s.yaml", tiny_raw))
    assert proc.returncode == 2 and "not_there.npz" in proc.stderr, proc.stderr  # then the data, as before


def test_the_study_eta_counts_down_within_a_run():
    """The ETA moves with each epoch of the run in flight (its own pace), not only when a run finishes; the
    runs to come are counted at their contender's time."""
    from bakeoff.cli import RunProgress
    from bakeoff.runs import events as ev
    from bakeoff.runs.spec import RunSpec

    plan = [RunSpec(c, s, 0, f"h{c}{s}") for c in ("a", "b") for s in (0, 1)]
    clock = [0.0]
    progress = RunProgress(plan)
    progress._clock = lambda: clock[0]
    assert progress.eta() == ""  # nothing known yet
    progress(ev.Started(plan[0]))
    clock[0] = 2.0
    progress(ev.EpochDone(plan[0], 1, 4, {}))  # 2 s an epoch: 6 s left of this run, 8 s for each of 3 more
    assert progress.eta() == "ETA 30 s"
    clock[0] = 6.0
    progress(ev.EpochDone(plan[0], 3, 4, {}))
    assert progress.eta() == "ETA 26 s"
    clock[0] = 8.0
    progress(ev.Finished(plan[0], {"status": "done"}))
    assert progress.eta() == "ETA 24 s"  # a's mean 8 s, for the three runs to come
    progress(ev.Started(plan[1]))
    clock[0] = 11.0
    assert progress.eta() == "ETA 21 s"  # the run in flight: its contender's 8 s less the 3 s it has had


def test_an_untimed_contenders_runs_are_guessed_at_the_timed_ones_pace_scaled_by_their_cost():
    """The demo's small CNN trains first: the SE-ResNet's runs to come are not counted at the CNN's pace but
    scaled by forward time x epochs (timed in the check before training), in the progress and in status."""
    from bakeoff.cli import RunProgress
    from bakeoff.runs import events as ev
    from bakeoff.runs.spec import RunSpec
    from bakeoff.runs.status import RunState, study_eta

    forward_s = {"small": 1e-4, "big": 4e-3}
    epochs = {"small": 10, "big": 5}
    plan = [RunSpec(c, s, 0, f"h{c}{s}", {"epochs": epochs[c]}, forward_s=forward_s[c]) for c in ("small", "big")
            for s in (0, 1)]
    clock = [0.0]
    progress = RunProgress(plan)
    progress._clock = lambda: clock[0]
    progress(ev.Started(plan[0]))
    clock[0] = 2.0
    progress(ev.Finished(plan[0], {"status": "done"}))
    # small: 2 s a run; big: 40x the forward time for half the epochs -> 40 s a run
    assert progress.eta() == "ETA 82 s"
    progress(ev.Started(plan[1]))
    clock[0] = 4.0
    progress(ev.Finished(plan[1], {"status": "done"}))
    progress(ev.Started(plan[2]))
    clock[0] = 14.0
    assert progress.eta() == "ETA 70 s"  # the big run in flight: its guess less the 10 s it has had, + 40 s
    states = [RunState("done", wall_time_s=2.0), RunState("done", wall_time_s=2.0), RunState("pending"),
              RunState("pending")]
    assert study_eta(plan, states) == pytest.approx(80.0)
    unknown = [RunSpec(r.contender, r.seed, r.fold, r.hash, r.protocol) for r in plan]  # not timed: as before
    assert study_eta(unknown, states) == pytest.approx(4.0)
    assert RunSpec(**plan[2].to_json()).cost() == pytest.approx(2e-2)  # plan.json keeps the forward time
    assert RunSpec(**unknown[2].to_json()).cost() is None and "forward_s" not in unknown[2].to_json()


def test_the_plan_carries_each_contenders_forward_time_from_the_check(tiny_raw):
    from bakeoff.api import Study

    study = Study.from_dict(tiny_raw)
    runs = study.plan()
    for name in tiny_raw["contenders"]:
        times = {r.forward_s for r in runs if r.contender == name}
        assert len(times) == 1 and 0 < times.pop() < 5.0


LEAVE = """
import atexit, sys, threading, time
from pathlib import Path
out = Path(sys.argv[1])
atexit.register(lambda: out.joinpath("atexit").write_text("ran"))
sys.stdout.write("buffered, never flushed by hand")
if sys.argv[2] == "thread":  # a thread that is not a daemon: the exit waits for it, as the interpreter's does
    threading.Thread(target=lambda: (time.sleep(0.3), out.joinpath("thread").write_text("done"))).start()
from bakeoff.cli import _leave
_leave(int(sys.argv[3]) if sys.argv[3].isdigit() else None if sys.argv[3] == "none" else sys.argv[3])
out.joinpath("after").write_text("reached")  # never: _leave ends the process
"""


@pytest.mark.parametrize("code, thread, status", [("0", "-", 0), ("2", "-", 2), ("130", "-", 130),
                                                  ("none", "-", 0), ("went wrong", "-", 1), ("3", "thread", 3)])
def test_the_command_leaves_without_teardown_yet_as_a_normal_exit_would(tmp_path, code, thread, status):
    """``entry`` skips the interpreter's teardown (1.5-2 s after torch and Lightning) but keeps what an exit
    does: atexit handlers run, buffered output arrives, the status is sys.exit's, threads are waited for."""
    proc = subprocess.run([sys.executable, "-c", LEAVE, str(tmp_path), thread, code], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == status, proc.stderr
    assert proc.stdout == "buffered, never flushed by hand"
    assert (tmp_path / "atexit").read_text() == "ran"
    assert not (tmp_path / "after").exists()
    assert (tmp_path / "thread").exists() == (thread == "thread")
    assert ("went wrong" in proc.stderr) == (code == "went wrong")
