"""csv: manifests and folder: layouts of image files; fold-column splits; bad inputs as one line."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bakeoff.config import SplitConfig
from bakeoff.data.images import read_image
from bakeoff.data.sources import load_source
from bakeoff.data.splits import make_splits
from tests.conftest import write_study
from tests.test_cli import _assert_clean_error, bakeoff

ROOT = Path(__file__).resolve().parents[2]


def make_digits(out: Path) -> Path:
    spec = importlib.util.spec_from_file_location("make_digits", ROOT / "examples" / "make_digits.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main(out)


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    return make_digits(tmp_path_factory.mktemp("digits"))


def test_csv_manifest_loads_real_digits(digits):
    from sklearn.datasets import load_digits

    data = load_source(f"csv:{digits}", channels=3, image_size=16)
    ref = load_digits()
    assert data.X.shape == (1797, 3, 16, 16) and data.meta["class_names"] == [str(k) for k in range(10)]
    np.testing.assert_array_equal(data.y, ref.target)
    raw = load_source(f"csv:{digits}")  # native 8 x 8 grayscale: the PNGs hold the digits exactly
    np.testing.assert_allclose(raw.X[:, 0], np.round(ref.images / 16 * 255) / 255, atol=1e-7)


def test_fold_column_splits(digits):
    data = load_source(f"csv:{digits}")
    split = make_splits(data, SplitConfig(kind="column", column="fold", val_fold=2))[0]
    fold = data.meta["column:fold"]
    assert set(fold[split.val]) == {"2"} and "2" not in set(fold[split.train])
    assert set(data.meta["column:split"][split.test]) == {"test"} and len(split.test) == 360
    folds = make_splits(data, SplitConfig(kind="kfold_column", column="fold"))
    assert len(folds) == 5 and all(np.array_equal(s.test, folds[0].test) for s in folds)
    assert sorted(np.concatenate([s.val for s in folds]).tolist()) == sorted(folds[0].train.tolist() + folds[0].val.tolist())


def test_folder_layout_and_conversions(tmp_path):
    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for i in range(3):
            Image.fromarray(np.full((10, 12, 3), 40 * i, np.uint8)).save(tmp_path / c / f"{i}.png")
    data = load_source(f"folder:{tmp_path}", channels=1, image_size=[5, 6])
    assert data.X.shape == (6, 1, 5, 6) and data.meta["class_names"] == ["cat", "dog"]
    g = tmp_path / "g.png"
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(g)
    rgb = read_image(g, 3, None)
    assert rgb.shape == (3, 8, 8) and np.array_equal(rgb[0], rgb[2])
    import tifffile

    tifffile.imwrite(tmp_path / "t.tif", np.full((4, 4), 65535, np.uint16))
    assert read_image(tmp_path / "t.tif", None, None).max() == 1.0


def _manifest(tmp_path, rows, header=("path", "label", "fold")):
    (tmp_path / "im").mkdir(exist_ok=True)
    for i, r in enumerate(rows):  # every image its own pixels: no twin across the split's parts
        p = tmp_path / r[0]
        if not p.exists() and not r[0].startswith("missing"):
            Image.fromarray((np.random.default_rng(i).random((8, 8)) * 255).astype(np.uint8)).save(p)
    path = tmp_path / "m.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _study(tmp_path, manifest, **split):
    raw = {"name": "c", "task": "multiclass_classification",
           "data": {"source": f"csv:{manifest}", "split": {"kind": "column", "column": "fold", "val_fold": 0, **split}},
           "protocol": {"epochs": 1}, "contenders": {"m": {"model": "bakeoff:se_resnet", "params": {"spatial_dims": 2}}}}
    return write_study(tmp_path / "s.yaml", raw)


ROWS = [(f"im/{i}.png", i % 3, i % 2) for i in range(12)]


@pytest.mark.parametrize("case, expect", [
    ("columns", "missing column(s) ['label']"),
    ("missing", "image path(s) do not exist (first: ["),
    ("unreadable", "cannot read image"),
    ("labels", "labels must be integers 0..K-1"),
    ("fold", "data.split.val_fold: 7 does not occur in column 'fold'"),
    ("class", "has no samples of class(es) [2]"),
])
def test_bad_manifests_are_one_clear_line(tmp_path, case, expect):
    rows, header, split = list(ROWS), ("path", "label", "fold"), {}
    if case == "columns":
        header = ("path", "grade", "fold")
    elif case == "missing":
        rows[3] = ("missing/a.png", 0, 0)
    elif case == "unreadable":
        (tmp_path / "im").mkdir()
        (tmp_path / "im" / "bad.png").write_bytes(b"not a png")
        rows[2] = ("im/bad.png", 2, 0)
    elif case == "labels":
        rows = [(p, lab + 1 if lab == 2 else lab, f) for p, lab, f in rows]  # labels 0, 1, 3
    elif case == "fold":
        split = {"val_fold": 7}
    elif case == "class":
        rows = [(p, lab, 0 if lab == 2 else f) for p, lab, f in rows]  # every class-2 image is in fold 0
    manifest = _manifest(tmp_path, rows, header)
    out = tmp_path / "out"
    proc = bakeoff("run", _study(tmp_path, manifest, **split), "--out", out)
    _assert_clean_error(proc, expect)
    assert not out.exists()


def test_string_labels_are_mapped_and_stated(tmp_path):
    from bakeoff.data.transforms import normalize
    from bakeoff.runs.context import StudyContext
    from bakeoff.tasks import validate_study

    rows = [(f"im/{i}.png", ["mild", "none", "severe"][i % 3], i % 2) for i in range(12)]
    manifest = _manifest(tmp_path, rows)
    data = load_source(f"csv:{manifest}")
    assert data.meta["class_names"] == ["mild", "none", "severe"] and list(data.y[:3]) == [0, 1, 2]
    ctx = StudyContext(validate_study({"name": "x", "task": "multiclass_classification",
                                       "data": {"source": f"csv:{manifest}", "split": {"kind": "column"}},
                                       "contenders": {"m": {"model": "bakeoff:se_resnet"}}}))
    assert ctx.data_checks["class_names"] == {"0": "mild", "1": "none", "2": "severe"}
    X = np.random.default_rng(0).normal(3, 2, size=(50, 3, 4, 4)).astype(np.float32)
    Z = normalize(X, "dataset")
    np.testing.assert_allclose(Z.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(Z.std(axis=(0, 2, 3)), 1, atol=1e-4)
