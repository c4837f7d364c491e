"""Each run's per-image scores are computed once: the report reads them from the run's scores.npz (keyed
by the scoring settings and the predictions file) and computes them again only when either changed."""

from __future__ import annotations

import numpy as np

from bakeoff.api import Study, rebuild_report
from bakeoff.tasks.segmentation import SemanticSegmentation

STUDY = {"name": "seg", "task": "semantic_segmentation",
         "data": {"source": "builtin:organelles2d", "params": {"n": 8, "size": 48, "seed": 0},
                  "split": {"kind": "holdout", "val_fraction": 0.25, "test_fraction": 0.25}},
         "protocol": {"seeds": [0], "epochs": 1, "batch_size": 4, "patch_size": [32, 32], "iterations_per_epoch": 1,
                      "select": {"monitor": "val/mean_dice", "mode": "max"}},
         "contenders": {"unet": {"model": "monai:UNet", "params": {"channels": [4, 8], "strides": [2],
                                                                   "num_res_units": 0}}},
         "evaluation": {"primary": "mean_dice", "speed": False, "n_boot": 200}}


def test_the_report_reuses_the_runs_scores(tmp_path, monkeypatch):
    first = Study.from_dict(STUDY).run(tmp_path / "o")
    assert list((tmp_path / "o").glob("runs/unet/*/scores.npz"))
    calls = []
    original = SemanticSegmentation.score_part
    monkeypatch.setattr(SemanticSegmentation, "score_part",
                        lambda self, d, boundary=None, threshold=0.5: calls.append(1) or original(self, d, boundary))
    again = rebuild_report(tmp_path / "o", make_plots=False)
    assert calls == []  # nothing scored again
    cols = [c for c in first.results.columns if c.startswith(("test_", "val_"))]
    np.testing.assert_allclose(again.results[cols].to_numpy(float), first.results[cols].to_numpy(float), rtol=1e-12)
    # a changed scoring setting is scored again, never read stale
    (tmp_path / "o" / "study.yaml").write_text(
        (tmp_path / "o" / "study.yaml").read_text().replace("nsd_tolerance: 1.0", "nsd_tolerance: 2.0"))
    rebuild_report(tmp_path / "o", make_plots=False)
    assert calls, "a changed nsd_tolerance must be scored again"
