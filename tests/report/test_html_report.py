"""report.html of a classification study with three contenders, opened in headless Chromium: no console
errors, no network fetch, every section, every image decodes; its numbers are the saved results'; it is
rebuilt from the saved runs alone (checkpoints deleted) with the same numbers; the terminal's verdict
table carries the marks."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import torch

from tests.conftest import write_study
from tests.report.browser import check_report
from tests.test_cli import bakeoff


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    from tests.conftest import TINY_STUDY

    root = tmp_path_factory.mktemp("html")
    raw = json.loads(json.dumps(TINY_STUDY))
    raw["contenders"]["cnn_narrow"] = {"model": "bakeoff:simple_cnn3d", "params": {"hidden": 32}}
    raw["evaluation"].update(n_boot=200, speed_repeats=2, min_effect=0.02)
    out = root / "out"
    proc = bakeoff("run", write_study(root / "s.yaml", raw), "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, out, proc


def test_the_page_opens_clean_and_says_the_saved_numbers(three, tmp_path):
    root, out, proc = three
    assert f"report: {out / 'report.html'}" in " ".join(proc.stdout.split())
    seen = check_report(out, root / "classification.png", n_pairs=2)
    res = pd.read_csv(out / "results.csv")
    means = res.groupby("contender")["test_auroc"].mean()
    shown = {r[0].strip(): float(r[1]) for r in seen["answer_rows"]}
    assert shown == pytest.approx(means.round(4).to_dict(), abs=5e-5)
    comparison = json.loads((out / "comparison.json").read_text())
    for p, text in zip(comparison["pairs"], seen["verdicts"]):
        assert text.startswith("✓ " if p["verdict"].startswith(p["a"] + " better") else
                               "✗ " if "better" in p["verdict"] else "? ")
        assert f"{p['a']} vs {p['b']}: {100 * p['difference']:+.1f} AUROC points" in text
    stab, sig = comparison["rank_stability"], comparison["significance_map"]
    assert set(stab["contenders"]) == {"cnn", "se", "cnn_narrow"} and stab["n_boot"] == 200
    assert sum(v is not None for row in sig["cells"].values() for v in row.values()) == 6  # all three pairs
    # its own family (all 3 pairs) beside the verdicts' (2 with the baseline), said under the figure
    assert sig["family"].startswith("every pair, Holm-adjusted over all 3") and "over 2" in sig["family"]
    assert sig["family"] in (out / "report.html").read_text()
    assert "3 contenders (cnn, se, cnn_narrow)" in seen["methods"] and "Holm" in seen["methods"]
    assert "@article{holm1979" in (out / "methods.txt").read_text()
    sizes = json.loads((out / "runs" / "cnn" / "seed0-fold0" / "run.json").read_text())["split_sizes"]
    assert sum(sizes.values()) == 240  # whole embryos per part: the fractions asked, and the real sizes said
    assert ("25% test asked, stratified by class, each group of samples kept whole in one part) (samples per part "
            f"in fold 0: train {sizes['train']}, val {sizes['val']}, test {sizes['test']})") in seen["methods"]
    for png in (out / "plots").glob("*.png"):
        assert png.with_suffix(".svg").is_file()
    # every statistic explains itself on hover: each column head but names and settings, each verdict
    import re

    page = (out / "report.html").read_text()
    heads = re.findall(r'<th(?: title="([^"]+)")?>([^<]*)</th>', page)
    assert {h for t, h in heads if not t} <= {"contender", "setting", "value"}, heads
    assert dict((h, t) for t, h in heads)["test auroc"].startswith("area under the ROC curve")
    assert len(re.findall(r'<p class="verdict [a-z]+" title="The difference is', page)) == 2  # each pair vs the baseline
    # FLOPs of one forward pass, as PyTorch's flop counter gives them for the same architecture
    from torch.utils.flop_counter import FlopCounterMode

    from bakeoff.models import create_model

    net = create_model("bakeoff:simple_cnn3d", in_channels=1, num_outputs=1, spatial_dims=3, input_shape=(9, 11, 11))
    with FlopCounterMode(display=False) as fc:
        net.eval()(torch.zeros(1, 1, 9, 11, 11))
    assert (res[res["contender"] == "cnn"]["flops_per_sample"] == fc.get_total_flops()).all()


def test_the_report_rebuilds_from_saved_runs_alone(three, tmp_path):
    root, out, _ = three
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    for ck in copy.glob("runs/*/*/checkpoints"):
        shutil.rmtree(ck)
    (copy / "report.html").unlink()
    proc = bakeoff("report", copy)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "✓ first-named contender better" in proc.stdout
    marks = {"✓", "✗", "≈", "?"}
    assert any(line.strip().startswith("│") and line.split("│")[1].strip() in marks for line in proc.stdout.splitlines())
    a, b = (pd.read_csv(d / "results.csv") for d in (out, copy))
    pd.testing.assert_frame_equal(a, b)
    ca, cb = (json.loads((d / "comparison.json").read_text()) for d in (out, copy))
    assert [p["verdict"] for p in ca["pairs"]] == [p["verdict"] for p in cb["pairs"]]
    assert ca["rank_stability"] == cb["rank_stability"]
    check_report(copy, tmp_path / "rebuilt.png", n_pairs=2)
