"""Each segmentation example study runs end to end through the CLI at tiny size; reported numbers are
recomputed from the saved predictions with MONAI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from monai.metrics import DiceMetric

from bakeoff.measure.metrics import load_predictions
from bakeoff.models import count_parameters, create_model
from tests.report.browser import check_report
from tests.test_cli import bakeoff

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--set", "protocol.seeds=[0]", "--set", "protocol.epochs=1", "--set", "protocol.iterations_per_epoch=2", "--set", "protocol.batch_size=2",
        "--set", "data.params.n=6", "--set", "evaluation.speed=false", "--set", "evaluation.n_boot=200",
        "--set", "evaluation.n_permutations=99"]


@pytest.mark.parametrize("example", ["organelles2d", "organelles2d_archs", "cryoem_picking"])
def test_example_runs_through_the_cli(tmp_path, example):
    out = tmp_path / "out"
    proc = bakeoff("run", ROOT / "examples" / f"{example}.yaml", "--out", out, *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = pd.read_csv(out / "results.csv")
    assert (res["status"] == "done").all()
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["pairs"] and all(p["verdict"] for p in comparison["pairs"])
    for plot in ("qualitative.png", "training_curves.png", "confusion_matrices.png"):
        assert (out / "plots" / plot).is_file()
    primary = comparison["primary"]
    assert f"test_{primary}" in res
    if example == "organelles2d_archs":  # unet, resnet and vit_v_net name a feature layer
        assert (out / "plots" / "feature_maps.png").is_file()
        assert len(list(out.glob("runs/*/*/features.npz"))) == 3
    if example != "cryoem_picking":
        assert (out / "plots" / "per_class_dice.png").is_file()
        # mean Dice recomputed from predictions.npz with MONAI (background excluded, undefined classes skipped)
        for _, r in res.iterrows():
            t = load_predictions(out / "runs" / r["contender"] / r["run_id"] / "predictions.npz")["test"]
            K = len(t["class_names"])
            oh = [torch.from_numpy(np.eye(K)[a.astype(int)]).permute(2, 0, 1)[None] for a in (*t["pred"], *t["y"])]
            n = len(t["pred"])
            d = DiceMetric(include_background=False, reduction="none", ignore_empty=False)(
                torch.cat(oh[:n]), torch.cat(oh[n:]))
            # MONAI scores a class absent from truth and prediction as 1 with ignore_empty=False; we leave it out
            both_empty = torch.stack([(torch.cat(oh[:n])[:, k].sum((1, 2)) == 0) & (torch.cat(oh[n:])[:, k].sum((1, 2)) == 0)
                                      for k in range(1, K)], 1)
            d[both_empty] = float("nan")
            expected = float(torch.nanmean(d, 0).nanmean())
            assert r["test_mean_dice"] == pytest.approx(expected, abs=1e-6)
    else:
        assert {"test_particle_f1", "test_particle_precision", "test_pixel_auroc"} <= set(res.columns)
    # report.html in headless Chromium; then rebuilt from the saved runs alone, with the same numbers
    check_report(out, tmp_path / f"{example}.png", n_pairs=len(comparison["pairs"]))
    for ck in out.glob("runs/*/*/checkpoints"):
        shutil.rmtree(ck)
    (out / "report.html").unlink()
    proc = bakeoff("report", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pd.testing.assert_frame_equal(res, pd.read_csv(out / "results.csv"))
    again = json.loads((out / "comparison.json").read_text())
    assert [p["verdict"] for p in again["pairs"]] == [p["verdict"] for p in comparison["pairs"]]
    assert (out / "report.html").is_file()


def test_resume_does_not_retrain_segmentation(tmp_path):
    out = tmp_path / "out"
    args = ("run", ROOT / "examples" / "cryoem_picking.yaml", "--out", out, *TINY)
    assert bakeoff(*args).returncode == 0
    ckpts = sorted(out.glob("runs/*/*/checkpoints/*.ckpt"))
    assert len(ckpts) == 2
    before = [p.stat().st_mtime_ns for p in ckpts]
    again = bakeoff(*args)
    assert again.returncode == 0 and [p.stat().st_mtime_ns for p in ckpts] == before


def test_a_killed_picking_run_resumes_from_its_last_epoch_to_the_same_results(tmp_path, monkeypatch):
    """Killed after its first epoch's resume checkpoint (which holds the selected epoch's validation label
    maps and particle probabilities, read back with weights_only=True), the run continues from epoch 2 and
    the study ends with the uninterrupted results."""
    from tests.test_resume import _results

    args = [*TINY, "--set", "protocol.epochs=2", "--set", "execution.checkpoint_every_s=0"]
    study = ROOT / "examples" / "cryoem_picking.yaml"
    assert bakeoff("run", study, "--out", tmp_path / "ref", *args).returncode == 0
    monkeypatch.setenv("BAKEOFF_KILL_AT", "epoch:1")
    killed = bakeoff("run", study, "--out", tmp_path / "out", *args)
    assert killed.returncode == -9, killed.stderr[-2000:]
    monkeypatch.delenv("BAKEOFF_KILL_AT")
    proc = bakeoff("run", study, "--out", tmp_path / "out", *args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    infos = [json.loads(p.read_text()) for p in sorted((tmp_path / "out").glob("runs/*/*/run.json"))]
    resumed = [i["training"].get("resumed_after_epochs") for i in infos]
    assert sorted(resumed, key=lambda v: v is None) == [1, None], resumed  # the first run continued; the second ran whole
    assert not any("resume_discarded" in i["training"] for i in infos)
    pd.testing.assert_frame_equal(_results(tmp_path / "out"), _results(tmp_path / "ref"))


@pytest.mark.parametrize("name, params", [("bakeoff:resnet_seg", {"base": 8, "blocks": 2}),
                                          ("bakeoff:vit_v_net", {"base": 8, "hidden": 32, "layers": 1, "heads": 2})])
@pytest.mark.parametrize("dims, shape", [(2, (32, 32)), (3, (16, 16, 16))])
def test_builtin_seg_models(name, params, dims, shape):
    net = create_model(name, in_channels=2, num_outputs=3, spatial_dims=dims, input_shape=shape, params=params)
    assert net(torch.randn(2, 2, *shape)).shape == (2, 3, *shape)
    odd = tuple(s + 3 for s in shape)  # sliding windows and whole images need not be multiples of 4
    assert net(torch.randn(1, 2, *odd)).shape == (1, 3, *odd)
    if name == "bakeoff:resnet_seg" and dims == 2:
        # stem 7x7 (2->8) + two stride-2 convs (8->16->32) + 2 residual blocks + 2 transposed convs + 1x1 head
        conv = lambda cin, cout, k: cin * cout * k ** dims + cout  # noqa: E731
        norm = lambda c: 2 * c  # noqa: E731
        expected = (conv(2, 8, 7) + norm(8) + conv(8, 16, 3) + norm(16) + conv(16, 32, 3) + norm(32)
                    + 2 * 2 * (conv(32, 32, 3) + norm(32))
                    + conv(32, 16, 3) + norm(16) + conv(16, 8, 3) + norm(8) + conv(8, 3, 1))
        assert count_parameters(net) == expected


def test_the_png_picking_example_runs_from_image_files(tmp_path):
    """examples/make_micrographs.py writes PNG micrographs and masks with a manifest; cryoem_png.yaml runs on
    them through the CLI, decoding them once into the study's cache; the saved label maps are the masks'."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_micrographs", ROOT / "examples" / "make_micrographs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    manifest = mod.main(tmp_path / "micrographs", 12, 64)
    study = tmp_path / "cryoem_png.yaml"
    shutil.copy(ROOT / "examples" / "cryoem_png.yaml", study)  # its source is relative to the study file
    out = tmp_path / "out"
    proc = bakeoff("run", study, "--out", out, "--set", "protocol.seeds=[0]", "--set", "protocol.epochs=1",
                   "--set", "protocol.iterations_per_epoch=2", "--set", "protocol.batch_size=2",
                   "--set", "evaluation.speed=false", "--set", "evaluation.n_boot=200")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len((out / "cache" / "builds.log").read_text().splitlines()) == 1
    df = pd.read_csv(out / "results.csv")
    assert len(df) == 2 and (df["status"] == "done").all() and "test_particle_f1" in df
    from PIL import Image

    rows = pd.read_csv(manifest)
    preds = load_predictions(next(out.glob("runs/unet/*/predictions.npz")))
    for i, y in zip(preds["test"]["ids"], preds["test"]["y"]):
        mask = rows.loc[rows["image"] == i, "mask"].item()
        np.testing.assert_array_equal(y, np.asarray(Image.open(manifest.parent / mask)))
