"""The digits example end to end through the CLI at tiny size: fold CSV, timm backbones, QWK, Grad-CAM."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn import metrics as skm

from bakeoff.measure.gradcam import gradcam, target_layer
from bakeoff.measure.metrics import load_predictions
from bakeoff.models import create_model
from tests.images.test_csv_source import make_digits
from tests.report.browser import check_report
from tests.test_cli import bakeoff

ROOT = Path(__file__).resolve().parents[2]


def test_digits_example_end_to_end(tmp_path):
    manifest = make_digits(tmp_path / "digits")
    out = tmp_path / "out"
    proc = bakeoff("run", ROOT / "examples" / "digits_timm.yaml", "--out", out, "--set", f"data.source=csv:{manifest}",
                   "--set", "protocol.epochs=1", "--set", "evaluation.speed=false", "--set", "data.image_size=16",
                   "--set", "evaluation.gradcam=2", "--set", "evaluation.n_boot=200",
                   # digits read as ordered grades, one contender with the cumulative-link ordinal head
                   "--set", "task=ordinal_classification",
                   "--set", "contenders.se_resnet.protocol={loss: {name: cumulative_link}}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = pd.read_csv(out / "results.csv")
    assert (res["status"] == "done").all() and set(res["contender"]) == {"mobilenetv3", "resnet10t", "se_resnet"}
    for _, r in res.iterrows():  # QWK, macro F1, OvR AUROC recomputed from the saved predictions
        t = load_predictions(out / "runs" / r["contender"] / r["run_id"] / "predictions.npz")["test"]
        hard = t["probs"].argmax(1)
        assert r["test_qwk"] == pytest.approx(skm.cohen_kappa_score(t["y"], hard, weights="quadratic"), abs=1e-6)
        assert r["test_f1"] == pytest.approx(skm.f1_score(t["y"], hard, average="macro"), abs=1e-6)
        assert r["test_auroc"] == pytest.approx(skm.roc_auc_score(t["y"], t["probs"], multi_class="ovr"), abs=1e-5)
    m = json.loads((out / "runs" / "resnet10t" / "seed0-fold0" / "metrics.json").read_text())
    cm = np.asarray(m["test_confusion"])
    np.testing.assert_allclose(m["test_confusion_normalized"], cm / cm.sum(1, keepdims=True))
    info = json.loads((out / "runs" / "se_resnet" / "seed0-fold0" / "run.json").read_text())
    assert info["protocol"]["loss"]["name"] == "cumulative_link"
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["primary"] == "qwk" and len(comparison["pairs"]) == 2
    for f in ("results_table.csv", "results_table.txt", "results.json", "plots/confusion_matrices.png"):
        assert (out / f).is_file()
    seen = check_report(out, tmp_path / "digits.png", n_pairs=2)  # three contenders of an ordinal (K-class) study
    assert any("reliability" == alt for alt, _, _ in seen["images"])  # top-label calibration of K classes
    assert len(json.loads((out / "comparison.json").read_text())["significance_map"]["contenders"]) == 3
    assert sorted(p.name for p in (out / "plots" / "gradcam").glob("*.png")) == \
        ["mobilenetv3.png", "resnet10t.png", "se_resnet.png"]  # one grid per contender
    for c in ("mobilenetv3", "resnet10t", "se_resnet"):
        with np.load(out / "runs" / c / "seed0-fold0" / "gradcam.npz") as z:
            heat, inputs, y = z["heatmaps"].astype(float), z["inputs"].astype(float), z["y"]
            assert heat.shape == (6, 16, 16) and int(z["shown"]) == 2  # a pool of 3 x 2 to choose from
            assert not np.allclose(heat, inputs[:, 0]) and heat.std() > 0
            assert len(set(y.tolist())) == 6  # taken across the ten classes, one each
    with np.load(out / "runs" / "se_resnet" / "seed0-fold0" / "gradcam.npz") as a, \
            np.load(out / "runs" / "resnet10t" / "seed0-fold0" / "gradcam.npz") as b:
        assert list(a["ids"]) == list(b["ids"])  # the same samples for every contender


def test_gradcam_samples_span_classes_and_both_outcomes():
    from bakeoff.report.plots import gradcam_choice
    from bakeoff.tasks.base import gradcam_pool

    ids, y = np.array([f"s{i:02d}" for i in range(12)]), np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    pool = gradcam_pool(ids[::-1], y[::-1], 6)  # order of the validation split does not matter: by id
    assert list(ids[::-1][pool]) == ["s00", "s06", "s09", "s01", "s07", "s10"]
    ids_, y_ = ids[[0, 6, 9, 1, 7, 10]], y[[0, 6, 9, 1, 7, 10]]
    a = {"ids": ids_, "y": y_, "classes": np.array([0, 1, 2, 1, 1, 0])}  # s01 and s10 wrong
    b = {"ids": ids_, "y": y_, "classes": np.array([0, 1, 0, 0, 1, 0])}  # s09 and s10 wrong
    chosen = gradcam_choice({"a": a, "b": b}, 4)
    # class 0 first where they disagree (s01), class 1 all right (s06), class 2 disagree (s09), then class 0 again
    assert chosen == ["s01", "s06", "s09", "s00"]
    assert gradcam_choice({"a": a, "b": b}, 6)[-1] == "s10"  # all wrong comes last within its class


def test_gradcam_on_a_vit_uses_tokens():
    net = create_model("timm:vit_tiny_patch16_224", in_channels=3, num_outputs=4, spatial_dims=2,
                       input_shape=(32, 32), params={"img_size": 32, "patch_size": 8, "depth": 2})
    layer, reshape, where = target_layer(net, (32, 32))
    assert layer is net.blocks[-1].norm1 and reshape is not None
    out = gradcam(net, np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32), False)
    assert out["heatmaps"].shape == (2, 32, 32) and out["heatmaps"].max() <= 1.0


def test_timm_pretrained_is_local_only(tmp_path, monkeypatch):
    import os

    import huggingface_hub.constants as hub
    import timm
    from safetensors.torch import save_file

    from bakeoff.errors import BakeoffError

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    with pytest.raises(BakeoffError, match="bakeoff never downloads"):
        create_model("timm:resnet10t", in_channels=3, num_outputs=5, spatial_dims=2, input_shape=(32, 32),
                     params={"pretrained": True})
    # offline only while bakeoff looked: the user's process keeps its own hub setting
    assert "HF_HUB_OFFLINE" not in os.environ and hub.HF_HUB_OFFLINE is False
    ref = timm.create_model("resnet10t", num_classes=7)
    save_file(ref.state_dict(), tmp_path / "w.safetensors")
    net = create_model("timm:resnet10t", in_channels=3, num_outputs=5, spatial_dims=2, input_shape=(32, 32),
                       params={"pretrained_file": str(tmp_path / "w.safetensors")})
    loaded = net.state_dict()
    backbone = [k for k in ref.state_dict() if not k.startswith("fc.")]
    assert all(torch.equal(loaded[k], ref.state_dict()[k]) for k in backbone)  # the head is new (5 classes)
    with pytest.raises(BakeoffError, match="not found"):
        create_model("timm:resnet10t", in_channels=3, num_outputs=5, spatial_dims=2, input_shape=(32, 32),
                     params={"pretrained_file": str(tmp_path / "none.safetensors")})
