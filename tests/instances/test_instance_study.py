"""instance_segmentation end to end through the CLI at tiny size (examples/cells_instances.yaml): label
images in, objects out by each contender's decoding, every reported number recomputed from the saved
predictions with StarDist's matching and Cellpose's average precision, the report with its AP-vs-IoU
figure and outlines in headless Chromium; and what the task needs from the data (object ids never
narrowed, no mask_values)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bakeoff.measure.metrics import load_predictions
from tests.report.browser import check_report
from tests.test_cli import bakeoff

pytest.importorskip("stardist")
ROOT = Path(__file__).resolve().parents[2]
TINY = ["--set", "protocol.seeds=[0,1]", "--set", "protocol.epochs=2", "--set", "protocol.iterations_per_epoch=3",
        "--set", "protocol.batch_size=4", "--set", "data.params.n=12", "--set", "data.params.size=64",
        "--set", "evaluation.speed=false", "--set", "evaluation.n_boot=200", "--set", "evaluation.n_permutations=99"]


def test_the_instance_example_runs_and_its_numbers_come_back_from_the_saved_objects(tmp_path):
    from cellpose import metrics as cellpose_metrics
    from stardist.matching import matching

    out = tmp_path / "out"
    proc = bakeoff("run", ROOT / "examples" / "cells_instances.yaml", "--out", out, *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = pd.read_csv(out / "results.csv")
    assert (res["status"] == "done").all() and len(res) == 4
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["primary"] == "mean_ap" and comparison["pairs"][0]["unit"] == "image"
    for plot in ("ap_vs_iou.png", "qualitative.png"):
        assert (out / "plots" / plot).is_file()
    thresholds = [0.5 + 0.05 * i for i in range(9)]
    for _, r in res.iterrows():
        t = load_predictions(out / "runs" / r["contender"] / r["run_id"] / "predictions.npz")["test"]
        assert all(np.issubdtype(p.dtype, np.integer) for p in t["pred"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ap, *_ = cellpose_metrics.average_precision(list(t["y"]), list(t["pred"]), threshold=thresholds)
        per_image = [np.mean(row) for row in ap if np.all(np.isfinite(row))]  # (cellpose: float32, NaN if empty)
        assert r["test_mean_ap"] == pytest.approx(np.mean(per_image), abs=1e-5)
        assert r["test_ap50"] == pytest.approx(np.mean([row[0] for row in ap if np.isfinite(row[0])]), abs=1e-5)
        f1 = [matching(y, p, thresh=0.5) for y, p in zip(t["y"], t["pred"])]
        assert r["test_f1"] == pytest.approx(np.mean([m.f1 for m in f1 if m.n_true + m.n_pred]), abs=1e-9)
        assert r["test_panoptic_quality"] == pytest.approx(
            np.mean([m.panoptic_quality for m in f1 if m.n_true + m.n_pred]), abs=1e-9)
        assert r["test_count_error"] == pytest.approx(np.mean([abs(m.n_pred - m.n_true) for m in f1]), abs=1e-9)
    # bakeoff evaluate on the trained checkpoints: each contender's objects decoded as in training, same numbers
    ckpt = {c: out / "runs" / c / "seed0-fold0" / "checkpoints" / "best.ckpt" for c in ("watershed", "flows")}
    ev = tmp_path / "ev"
    proc = bakeoff("evaluate", ROOT / "examples" / "cells_instances.yaml", "--out", ev, *TINY,
                   *[x for c, p in ckpt.items() for x in ("--checkpoint", f"{c}={p}")])
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = pd.read_csv(ev / "results.csv").set_index("contender")
    first = res[res["run_id"] == "seed0-fold0"].set_index("contender")
    for c in ckpt:
        assert again.loc[c, "test_mean_ap"] == pytest.approx(first.loc[c, "test_mean_ap"], abs=1e-12)
    check_report(out, tmp_path / "cells.png", n_pairs=1)
    page = (out / "report.html").read_text()
    assert "at each IoU threshold" in page and "each object its own colour" not in page.split("<img")[0]


def test_object_ids_above_255_reach_the_scores_unchanged():
    from bakeoff.data.segdata import from_image_arrays
    from bakeoff.train.strategy import _narrowest

    mask = np.zeros((40, 40), np.int32)
    for k in range(300):
        r, c = divmod(k, 20)
        mask[r * 2, c * 2] = k + 1
    data = from_image_arrays([np.zeros((40, 40), np.float32)], [mask], num_classes=2)
    data.instances = True
    data.check()
    kept = _narrowest(data.mask(0))
    assert kept.dtype == np.uint16 and np.array_equal(kept, mask) and data.class_pixels[0, 1] == 300
    assert _narrowest(np.array([[0, 2]])).dtype == np.uint8  # class maps stay as small as before


def test_a_study_of_instances_refuses_mask_values(tmp_path):
    raw = (ROOT / "examples" / "cells_instances.yaml").read_text()
    study = tmp_path / "s.yaml"
    study.write_text(raw.replace("  normalize: zscore", "  normalize: zscore\n  mask_values: [0, 255]"))
    proc = bakeoff("check", study)
    assert proc.returncode == 2 and "data.mask_values" in proc.stderr and "object's id" in proc.stderr, proc.stderr


def test_instance_labels_are_not_read_as_classes(tmp_path):
    raw = (ROOT / "examples" / "cells_instances.yaml").read_text()
    study = tmp_path / "s.yaml"
    study.write_text(raw.replace("task: instance_segmentation", "task: semantic_segmentation").replace(
        "  loss: {name: boundary_ce}\n", "").replace("    protocol: {loss: {name: flows}}\n", "").replace("  seed_threshold: 0.5", "").replace(
        "  foreground_threshold: 0.5", "").replace("  min_size: 8", "").replace("primary: mean_ap", "primary: mean_dice"))
    proc = bakeoff("check", study)
    assert proc.returncode == 2 and "holds instance labels" in proc.stderr and "instance_segmentation" in proc.stderr, \
        proc.stderr


def test_the_suite_example_on_cells_and_real_nuclei_is_valid():
    """examples/nuclei_instances.yaml: both datasets load as instances (the stardist wheel's nuclei image as
    16 tiles with 125 labelled nuclei split by position), both contenders build; ``bakeoff check``."""
    from bakeoff.tasks.instances import load_nuclei2d_instances

    tiles = load_nuclei2d_instances()
    assert len(tiles["masks"]) == 16 and sorted(set(tiles["parts"])) == ["test", "train", "val"]
    assert all(m.dtype == np.int32 for m in tiles["masks"]) and max(int(m.max()) for m in tiles["masks"]) > 5
    proc = bakeoff("check", ROOT / "examples" / "nuclei_instances.yaml")
    assert proc.returncode == 0 and "2 datasets" in proc.stdout and "12 runs planned" in proc.stdout, proc.stderr
