"""examples/model_comparison.ipynb runs top to bottom at the tiny size its first cell sets (nbclient, a
real kernel); any cell error fails the suite. Its committed outputs come from the same cells."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from scripts.make_notebook import PATH, build, execute


def test_the_committed_notebook_is_the_generated_one():
    committed = nbformat.read(PATH, as_version=4)
    assert [c.source for c in committed.cells] == [c.source for c in build().cells], \
        "examples/model_comparison.ipynb is out of date: python scripts/make_notebook.py"
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert all(c.outputs for c in code[1:]), "committed without its outputs (the first cell only sets sizes)"


def test_the_committed_outputs_show_a_decided_verdict():
    """The showcase shows something: at its committed size the comparison is decided."""
    committed = nbformat.read(PATH, as_version=4)
    text = "\n".join(o.get("text", "") for c in committed.cells if c.cell_type == "code" for o in c.outputs)
    verdicts = [ln for ln in text.splitlines() if ln.startswith("se_resnet3d vs simple_cnn:")]
    assert verdicts and verdicts[0].endswith("se_resnet3d better"), verdicts


def test_the_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    monkeypatch.setenv("BAKEOFF_NOTEBOOK_N", "400")  # the same cells at a tiny size (the kernel inherits them)
    monkeypatch.setenv("BAKEOFF_NOTEBOOK_EPOCHS", "2")
    nb = execute(nbformat.read(PATH, as_version=4), tmp_path)  # raises CellExecutionError on any cell error
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "se_resnet3d vs simple_cnn:" in text and "share of bootstrap resamples" in text
    out = tmp_path / "model_comparison_out"
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["pairs"][0]["verdict"] in text
    assert (out / "report.html").is_file() and Path(out / "methods.txt").read_text().startswith("We compared 2")
