"""``bakeoff compare`` on predictions made elsewhere."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.test_cli import _assert_clean_error, bakeoff


def test_compare_npz_and_csv(tmp_path):
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.3).astype(int)
    good = 1 / (1 + np.exp(-(3 * (y - 0.3) + rng.normal(size=300))))
    weak = 1 / (1 + np.exp(-(0.5 * (y - 0.3) + rng.normal(size=300))))
    ids = np.array([f"s{i}" for i in range(300)])
    np.savez(tmp_path / "good.npz", probs=good, y=y, ids=ids)
    order = rng.permutation(300)  # B lists the same samples in another order, matched by id
    pd.DataFrame({"id": ids[order], "score": weak[order]}).to_csv(tmp_path / "weak.csv", index=False)
    out = tmp_path / "cmp.json"
    proc = bakeoff("compare", tmp_path / "good.npz", tmp_path / "weak.csv", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "good better" in proc.stdout and "McNemar" in proc.stdout
    pair = json.loads(out.read_text())["pairs"][0]
    # two prediction files are two trained models: the verdict says it is about them
    assert pair["verdict"] == "good better (these trained weights, 1 seed)" and pair["ci_low"] > 0
    assert pair["scope"] == "trained weights" and "train 3 seeds" in pair["to_resolve"]["note"]
    from sklearn.metrics import roc_auc_score

    assert pair["difference"] == pytest.approx(roc_auc_score(y, good) - roc_auc_score(y, weak), abs=1e-12)


def test_compare_bad_input(tmp_path):
    np.savez(tmp_path / "a.npz", probs=np.random.rand(10))
    np.savez(tmp_path / "b.npz", probs=np.random.rand(12))
    _assert_clean_error(bakeoff("compare", tmp_path / "a.npz", tmp_path / "b.npz"), "10 samples", "12")
    np.savez(tmp_path / "b.npz", probs=np.random.rand(10))
    _assert_clean_error(bakeoff("compare", tmp_path / "a.npz", tmp_path / "b.npz"), "no labels")
    _assert_clean_error(bakeoff("compare", tmp_path / "a.npz", tmp_path / "nope.npz"), "not found")
