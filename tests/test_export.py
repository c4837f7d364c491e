"""bakeoff export: the chosen run's weights as safetensors, torch.export, ONNX or TorchScript with a model
card; loaded the way the card says (ONNX: run by onnxruntime), the network gives the run's saved test
predictions again (round trip)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import write_study
from tests.test_cli import bakeoff


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from tests.conftest import TINY_STUDY

    root = tmp_path_factory.mktemp("export")
    raw = json.loads(json.dumps(TINY_STUDY))
    raw["evaluation"].update(speed=False, n_boot=200)
    out = root / "out"
    proc = bakeoff("run", write_study(root / "s.yaml", raw), "--out", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def _test_inputs(out, run_id, contender):
    from bakeoff.runs.context import StudyContext
    from bakeoff.runs.store import StudyStore

    ctx = StudyContext(StudyStore(out).saved_study())
    with np.load(out / "runs" / contender / run_id / "predictions.npz") as f:
        ids, probs = f["test_ids"], f["test_probs"]
    where = {str(i): k for k, i in enumerate(ctx.data.ids)}
    return torch.as_tensor(ctx.data.X[[where[str(i)] for i in ids]]), probs


@pytest.mark.parametrize("fmt", ["safetensors", "torch_export", "torchscript", "onnx"])
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_an_exported_model_gives_the_runs_test_predictions_again(study, tmp_path, fmt):
    target = tmp_path / {"safetensors": "model.safetensors", "torch_export": "model.pt2", "torchscript": "model.pt",
                         "onnx": "model.onnx"}[fmt]
    proc = bakeoff("export", study, "--out", target, "--format", fmt)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, target.name + ".card.json",
                                                                 target.name + ".card.md"])  # no temporary left
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    assert os.stat(target).st_mode == os.stat(plain).st_mode  # readable as the group's other files (not 0600)
    plain.unlink()
    card = json.loads(target.with_name(target.name + ".card.json").read_text())
    infos = {p.parent.parent.name + "/" + p.parent.name: json.loads(p.read_text())
             for p in (study / "runs").glob("*/*/run.json")}
    comparison = json.loads((study / "comparison.json").read_text())
    first = min(comparison["rank_stability"]["rank"], key=comparison["rank_stability"]["rank"].get)
    assert card["contender"] == first  # the contender ranked first ...
    mine = [i for k, i in infos.items() if i["contender"] == first]
    assert card["run"]["seed"] == max(mine, key=lambda i: i["best_score"])["seed"]  # ... its best validation run
    assert card["model"] == infos[f"{first}/{card['run']['run_id']}"]["model"] and card["format"] == fmt
    assert "## Loading" in target.with_name(target.name + ".card.md").read_text()
    X, saved = _test_inputs(study, card["run"]["run_id"], first)
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        scope: dict = {"x": X.numpy().astype(np.float32)}  # the input the ONNX card's code names
        exec(card["load"], scope)  # the card's own loading code
    finally:
        os.chdir(here)
    if fmt == "onnx":  # the whole test set as one batch: the batch dimension is dynamic
        logits = torch.from_numpy(scope["output"])
    else:
        with torch.no_grad():
            logits = scope["model"](X)
    probs = torch.sigmoid(logits.reshape(len(X), -1)[:, 0]).numpy()
    np.testing.assert_allclose(probs, saved, rtol=1e-5, atol=1e-6)


def test_export_refuses_to_overwrite_and_names_bad_choices(study, tmp_path):
    target = tmp_path / "m.safetensors"
    target.write_text("mine")
    proc = bakeoff("export", study, "--out", target)
    assert proc.returncode == 2 and "exists" in proc.stderr and target.read_text() == "mine"
    proc = bakeoff("export", study, "--out", tmp_path / "n.safetensors", "--contender", "nope")
    assert proc.returncode == 2 and "--contender 'nope'" in proc.stderr
    proc = bakeoff("export", study, "--out", tmp_path / "n.pkl", "--format", "pickle")
    assert proc.returncode == 2 and "expected one of ['safetensors', 'torchscript', 'torch_export', 'onnx']" in proc.stderr


def test_export_refuses_a_card_it_would_replace_and_a_folder_it_cannot_write_before_any_work(study, tmp_path,
                                                                                             monkeypatch):
    """A MODEL.card.md (or .card.json) beside the target is never replaced, and a read-only destination
    folder is refused at once (one line, exit 2), nothing written in either case."""
    import time

    card = tmp_path / "m.safetensors.card.md"
    card.write_text("my notes")
    proc = bakeoff("export", study, "--out", tmp_path / "m.safetensors")
    assert proc.returncode == 2 and "m.safetensors.card.md exists" in proc.stderr, proc.stderr
    assert card.read_text() == "my notes" and not (tmp_path / "m.safetensors").exists()
    # a folder this user may not write to (as root every folder is writable, so the check is made to say no)
    from bakeoff.errors import BakeoffError
    from bakeoff.runs import export

    locked = tmp_path / "ro"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(export.os, "access", lambda p, mode: False if Path(p) == locked else real(p, mode))
    t0 = time.time()
    with pytest.raises(BakeoffError, match="ro is not a folder this user can write to; expected a writable"):
        export.export_run(study, locked / "sub" / "m.safetensors")
    assert time.time() - t0 < 5 and not list(locked.iterdir())  # before the network is built


def test_export_of_a_study_whose_runs_all_failed_says_so(tmp_path):
    from bakeoff.config import validate_study
    from bakeoff.errors import BakeoffError
    from bakeoff.runs.export import choose_run
    from bakeoff.runs.store import StudyStore
    from tests.conftest import TINY_STUDY

    (tmp_path / "study.yaml").write_text(validate_study(json.loads(json.dumps(TINY_STUDY))).to_yaml())
    for name in ("cnn", "se"):
        (tmp_path / "runs" / name / "seed0-fold0").mkdir(parents=True)
        (tmp_path / "runs" / name / "seed0-fold0" / "run.json").write_text(
            json.dumps({"contender": name, "seed": 0, "fold": 0, "run_id": "seed0-fold0", "status": "failed"}))
    with pytest.raises(BakeoffError, match=r"no finished run to export \(2 failed; bakeoff status says why\)"):
        choose_run(StudyStore(tmp_path), {}, None, None, None)
