"""bakeoff evaluate: checkpoints trained elsewhere give the outputs of a full run, loaded safely."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from tests.conftest import TINY_STUDY, write_study
from tests.test_cli import _assert_clean_error, bakeoff


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("ev")
    raw = {**TINY_STUDY, "protocol": {**TINY_STUDY["protocol"], "seeds": [0]},
           "evaluation": {**TINY_STUDY["evaluation"], "speed": False}}
    study = write_study(root / "s.yaml", raw)
    out = root / "train"
    proc = bakeoff("run", study, "--out", out)
    assert proc.returncode == 0, proc.stderr
    return root, study, out


def test_lightning_checkpoint_round_trips_with_identical_metrics(trained, tmp_path):
    root, study, out = trained
    ckpt = out / "runs" / "cnn" / "seed0-fold0" / "checkpoints" / "best.ckpt"
    assert "state_dict" in torch.load(ckpt, weights_only=True)  # a Lightning .ckpt with the "model." prefix
    # the other contender as a plain, DDP-style state dict ("module." prefix)
    se = torch.load(out / "runs" / "se" / "seed0-fold0" / "checkpoints" / "best.ckpt", weights_only=True)
    plain = tmp_path / "se.pt"
    torch.save({"module." + k[len("model."):]: v for k, v in se["state_dict"].items() if k.startswith("model.")}, plain)
    ev = tmp_path / "eval"
    proc = bakeoff("evaluate", study, "--out", ev, "--checkpoint", f"cnn={ckpt}", "--checkpoint", f"se={plain}")
    assert proc.returncode == 0, proc.stderr
    a = pd.read_csv(out / "results.csv").set_index("contender")
    b = pd.read_csv(ev / "results.csv").set_index("contender")
    metrics = [c for c in b.columns if c.startswith(("test_", "val_"))]
    pd.testing.assert_frame_equal(a.loc[["cnn", "se"], metrics], b.loc[["cnn", "se"], metrics])
    for f in ("results_table.csv", "results_table.txt", "results.json", "comparison.json", "summary.csv",
              "plots/confusion_matrices.png"):
        assert (ev / f).is_file(), f
    info = json.loads((ev / "runs" / "cnn" / "seed0-fold0" / "run.json").read_text())
    assert info["source"] == "checkpoint" and len(info["checkpoint_sha256"]) == 64
    table = pd.read_csv(ev / "results_table.csv").set_index("contender")
    assert table.loc["cnn", "auroc_mean"] == pytest.approx(b.loc["cnn", "test_auroc"])
    # training into an evaluation directory would replace the evaluated checkpoints: refused
    _assert_clean_error(bakeoff("run", study, "--out", ev), "bakeoff evaluate")


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch EVIL_RAN",))


def test_pickled_code_is_refused_and_never_run(trained, tmp_path):
    root, study, _ = trained
    bad = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": _Evil()}, bad)
    proc = bakeoff("evaluate", study, "--out", tmp_path / "ev", "--checkpoint", f"cnn={bad}", cwd=tmp_path)
    _assert_clean_error(proc, str(bad), "refused", "arbitrary pickled code")
    assert not (tmp_path / "EVIL_RAN").exists() and not (tmp_path / "ev").exists()


def test_mismatched_keys_unknown_contender_missing_file(trained, tmp_path):
    root, study, out = trained
    other = out / "runs" / "se" / "seed0-fold0" / "checkpoints" / "best.ckpt"
    proc = bakeoff("evaluate", study, "--out", tmp_path / "ev", "--checkpoint", f"cnn={other}")
    _assert_clean_error(proc, "keys do not match bakeoff:simple_cnn3d", "missing (first: [")
    _assert_clean_error(bakeoff("evaluate", study, "--out", tmp_path / "ev", "--checkpoint", f"nope={other}"),
                        "'nope' is not a contender")
    _assert_clean_error(bakeoff("evaluate", study, "--out", tmp_path / "ev", "--checkpoint", "cnn=/no/such.ckpt"),
                        "file not found")
    assert not (tmp_path / "ev").exists()
