"""Regression, the task that proves the seams: metrics against scikit-learn and scipy (plain and under
bootstrap weights), its own losses, a number per image from npz and CSV, a simulated null and effect
through the real verdict code, and the CLI end to end with numbers recomputed from saved predictions."""

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
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from bakeoff.config import LossConfig
from bakeoff.errors import BakeoffError
from bakeoff.losses import build_loss
from bakeoff.tasks import get_task, validate_study
from bakeoff.tasks.regression import make_spot_counts, weighted_ranks

REFERENCE = {
    "mae": mean_absolute_error,
    "rmse": lambda y, p: np.sqrt(mean_squared_error(y, p)),
    "r2": r2_score,
    "pearson": lambda y, p: stats.pearsonr(y, p)[0],
    "spearman": lambda y, p: stats.spearmanr(y, p)[0],
}


def _preds(n=60, seed=0, ties=True):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 6, n).astype(float) if ties else rng.normal(3, 2, n)
    p = y + rng.normal(0, 1.0, n)
    p[:3] = np.round(p[:3])  # ties in the predictions too
    return y, p


@pytest.mark.parametrize("ties", [True, False])
def test_every_metric_matches_its_reference_plain_and_under_bootstrap_weights(ties):
    task = get_task("regression")
    y, p = _preds(ties=ties)
    part = {"y": y, "probs": p}
    got = task.metrics(y, p)
    rng = np.random.default_rng(1)
    W = rng.multinomial(len(y), np.full(len(y), 1 / len(y)), size=5).astype(float)
    for name, ref in REFERENCE.items():
        assert got[name] == pytest.approx(ref(y, p), rel=1e-10, abs=1e-12), name
        m = task.metric(name)
        reps = m.weighted(m.table(part, task), W)
        expected = [ref(np.repeat(y, w.astype(int)), np.repeat(p, w.astype(int))) for w in W]
        np.testing.assert_allclose(reps, expected, rtol=1e-9, atol=1e-12, err_msg=name)


def test_weighted_mid_ranks_are_scipys_ranks_of_the_expanded_sample():
    v = np.array([3.0, 1.0, 3.0, 2.0, 5.0, 1.0])
    W = np.array([[1, 1, 1, 1, 1, 1], [2, 0, 1, 3, 0, 1], [0, 0, 4, 1, 1, 0]], float)
    ranks = weighted_ranks(v, W)
    for w, r in zip(W, ranks):
        expanded = stats.rankdata(np.repeat(v, w.astype(int)))
        np.testing.assert_allclose(np.repeat(r, w.astype(int)), expanded)


def test_the_directions_and_the_primary():
    task = get_task("regression")
    assert task.default_primary == "mae" and not task.metric("mae").higher_is_better
    assert task.metric("r2").higher_is_better and task.metric("spearman").bounds == (-1.0, 1.0)
    cfg = validate_study({"name": "r", "task": "regression", "data": {"source": "builtin:spot_counts"},
                          "contenders": {"a": {"model": "bakeoff:se_resnet", "params": {"spatial_dims": 2}}}})
    assert cfg.evaluation.primary == "mae"
    assert (cfg.protocol.select.monitor, cfg.protocol.select.mode) == ("val/mae", "min")


def test_its_own_losses_and_a_clear_refusal_of_a_classification_loss():
    import torch

    task = get_task("regression")
    y = np.array([0.0, 2.0, 5.0])
    out, target = torch.tensor([[0.5], [2.0], [3.0]]), torch.from_numpy(y)
    mse = build_loss(LossConfig(name="mse"), task, y)
    assert float(mse(out, target)) == pytest.approx(np.mean((np.array([0.5, 2.0, 3.0]) - y) ** 2))
    huber = build_loss(LossConfig(name="huber", params={"delta": 1.0}), task, y)
    assert float(huber(out, target)) == pytest.approx(float(torch.nn.HuberLoss()(out[:, 0], target.float())))
    with pytest.raises(BakeoffError, match=r"ce is for multi-class / ordinal classification or segmentation and particle picking; "
                                           r"this study is regression: expected one of \['mse', 'huber'\]"):
        build_loss(LossConfig(name="ce"), task, y)
    with pytest.raises(BakeoffError, match="weights classes, and this study's targets are not classes"):
        build_loss(LossConfig(name="mse", class_weights="balanced"), task, y)


def test_a_number_per_image_from_npz_and_csv(tmp_path):
    from PIL import Image

    from bakeoff.config import DataConfig

    arrays = make_spot_counts(n=20, size=16, seed=3)
    np.savez(tmp_path / "d.npz", X=arrays["X"], y=arrays["y"] + 0.25)
    data = get_task("regression").load_data(DataConfig(source=f"npz:{tmp_path / 'd.npz'}"))
    assert data.y.dtype == np.float64 and np.allclose(data.y, arrays["y"] + 0.25)
    rows = ["path,label"]
    for i in range(6):
        Image.fromarray((np.random.default_rng(i).random((8, 8)) * 255).astype(np.uint8)).save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png,{i * 1.5}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    data = get_task("regression").load_data(DataConfig(source=f"csv:{tmp_path / 'm.csv'}"))
    assert sorted(data.y.tolist()) == [0.0, 1.5, 3.0, 4.5, 6.0, 7.5]
    (tmp_path / "bad.csv").write_text("\n".join([*rows[:3], "2.png,n/a"]) + "\n")
    with pytest.raises(BakeoffError, match=r"bad.csv: row 4: label 'n/a' is not a finite number"):
        get_task("regression").load_data(DataConfig(source=f"csv:{tmp_path / 'bad.csv'}"))
    with pytest.raises(BakeoffError, match="data.num_classes: 3; task regression predicts a number"):
        get_task("regression").load_data(DataConfig(source="builtin:spot_counts", num_classes=3))


# -- verdicts: simulated studies through the same comparison code (bakeoff.stats.calibration) --------------
def _regression_runs(sc, rng):
    """Each run's test predictions: truth y, a per-sample difficulty both models share, a per-model
    per-sample part, noise; the run's quality moves its error scale (sd tau on the log scale); under an
    effect model A's error scale is smaller by ``effect``."""
    from bakeoff.stats.calibration import _paired, _run_effects, _test_sets

    sets = _test_sets(sc)
    y, a, b = {}, {}, {}
    cache = {}
    u = _run_effects(sc, rng)
    for f, ids in enumerate(sets):
        key = int(ids[0])
        if key not in cache:
            n = len(ids)
            cache[key] = (rng.integers(0, 9, n).astype(float), rng.normal(size=n),
                          {"a": rng.normal(size=n), "b": rng.normal(size=n)})
        yy, z, k = cache[key]
        y[f] = yy
        for s in range(sc.seeds):
            for which, out in (("a", a), ("b", b)):
                scale = 0.9 * np.exp(u[s, f, which]) - (sc.effect if which == "a" else 0.0)
                out[s, f] = yy + 0.6 * z + scale * (0.5 * k[which] + 0.85 * rng.normal(size=len(yy)))
    return _paired(sc, get_task("regression"), sets, a, b, y)


@pytest.mark.parametrize(("kind", "sims", "seeds", "tau", "effect"), [
    ("null", 1000, 3, 0.10, 0.0), ("null", 1000, 1, 0.0, 0.0), ("null", 1000, 5, 0.20, 0.0),
    ("power", 200, 3, 0.0, 0.25)])
def test_regression_verdicts_hold_alpha_under_the_null_and_find_a_real_effect(monkeypatch, kind, sims, seeds,
                                                                              tau, effect):
    """Null: a false better/worse at most alpha + 0.02, as the calibration suite (1,000 studies: an estimate
    above 0.07 has probability 0.3% at a true rate of 0.05; the seed is fixed). Effect (A's error scale
    0.65 vs 0.9 on 150 samples, 3 seeds): found in most studies, always as A better (lower MAE); with three
    seeds the t test on 2 df has less power than an oracle that knows the variance (printed beside it)."""
    from bakeoff.stats import calibration

    monkeypatch.setitem(calibration.GENERATORS, "regression", _regression_runs)
    sc = calibration.Scenario(f"regression MAE {kind}", "regression", "mae", seeds=seeds, n=150, tau=tau,
                              effect=effect, expect=kind)
    rates = calibration.run_scenario(sc, sims, seed=7)
    print(sc.name, rates)
    if kind == "null":
        assert rates["better"] <= 0.07, rates
    else:
        assert rates["a_better"] >= 0.6 and rates["better"] == rates["a_better"], rates


# -- the CLI end to end ------------------------------------------------------------------------------------
def test_a_regression_study_end_to_end(tmp_path):
    raw = yaml.safe_load(Path("examples/spots_regression.yaml").read_text())
    raw["data"]["params"] = {"n": 120, "size": 16, "max_spots": 4, "seed": 1}
    raw["protocol"].update(seeds=[0, 1], epochs=2)
    raw["contenders"] = {"small": {"model": "bakeoff:se_resnet", "params": {"spatial_dims": 2, "base_channels": 4}},
                         "wide": {"model": "bakeoff:se_resnet", "params": {"spatial_dims": 2, "base_channels": 8}}}
    raw["evaluation"].update(baseline="small", speed_repeats=1)
    study = tmp_path / "reg.yaml"
    study.write_text(yaml.safe_dump(raw))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "bakeoff.cli", "run", str(study), "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    df = pd.read_csv(out / "results.csv")
    assert len(df) == 4 and (df["status"] == "done").all()
    for _, row in df.iterrows():  # every number recomputed from the saved predictions
        with np.load(out / "runs" / row["contender"] / row["run_id"] / "predictions.npz") as f:
            y, p = f["test_y"], f["test_probs"]
        for name, ref in REFERENCE.items():
            assert row[f"test_{name}"] == pytest.approx(ref(y, p), rel=1e-6, abs=1e-9), name
    comp = json.loads((out / "comparison.json").read_text())
    pair = comp["pairs"][0]
    assert comp["primary"] == "mae" and pair["metric"] == "mae" and pair["higher_is_better"] is False
    assert pair["verdict"].split()[0] in ("wide", "small", "equivalent", "inconclusive")
    assert "calibration" not in comp  # no probabilities to calibrate
    assert (out / "plots" / "predicted_vs_true.png").is_file() and not (out / "plots" / "confusion_matrices.png").exists()
    assert "for regression on 120 samples" in (out / "methods.txt").read_text()
    assert "predicted_vs_true" in (out / "report.html").read_text()


def test_a_users_metric_for_regression_is_resampled_like_the_built_ins():
    from sklearn.metrics import median_absolute_error

    from bakeoff.tasks import register_metric

    @register_metric("median_ae_test", higher_is_better=False, tasks=["regression"], bounds=(0, float("inf")))
    def median_ae(y, pred):
        return median_absolute_error(y, pred)

    task = get_task("regression")
    y, p = _preds()
    assert task.metrics(y, p)["median_ae_test"] == pytest.approx(median_absolute_error(y, p))
    with pytest.raises(ValueError, match="not tasks with one prediction per sample"):
        register_metric("x", higher_is_better=True, tasks=["semantic_segmentation"])(median_ae)
