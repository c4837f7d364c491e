from __future__ import annotations

import numpy as np
import pytest

from bakeoff.data.sources import from_arrays, load_source
from bakeoff.data.transforms import normalize
from bakeoff.errors import BakeoffError


def test_shapes_are_standardised():
    x = np.zeros((5, 9, 11, 11))
    assert from_arrays(x, np.zeros(5)).X.shape == (5, 1, 9, 11, 11)
    assert from_arrays(np.zeros((5, 2, 9, 11, 11)), np.zeros(5)).X.shape == (5, 2, 9, 11, 11)
    assert from_arrays(np.zeros((5, 8, 8)), np.zeros(5)).X.shape == (5, 1, 8, 8)
    assert from_arrays(np.zeros((5, 3, 8, 8)), np.zeros(5), spatial_dims=2).X.shape == (5, 3, 8, 8)


@pytest.mark.parametrize("X, y, match", [
    (np.zeros((5, 4, 4, 4)), np.zeros(4), "X has 5 samples but y has 4"),
    (np.zeros((5, 4)), np.zeros(5), r"X has shape \(5, 4\)"),
    (np.zeros((5, 1, 1, 4, 4, 4)), np.zeros(5), "spatial dimensions"),
    (np.zeros((5, 4, 4, 4)), np.array([0, 1, 2, 0, 1]), r"labels \[2\] are outside \{0, 1\}"),
    (np.full((5, 4, 4, 4), np.nan), np.zeros(5), "NaN or inf"),
    (np.zeros((5, 4, 4, 4)), np.array([0.5, 1, 0, 0, 1]), "expected integer class labels"),
])
def test_bad_arrays(X, y, match):
    with pytest.raises(BakeoffError, match=match):
        from_arrays(X, y)


def test_npz_source(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, X=rng.normal(size=(20, 9, 11, 11)), y=rng.integers(0, 2, 20), groups=np.arange(20) // 4)
    d = load_source(f"npz:{path}")
    assert d.X.shape == (20, 1, 9, 11, 11) and d.groups is not None
    np.savez(tmp_path / "bad.npz", images=np.zeros(3))
    with pytest.raises(BakeoffError, match=r"missing array\(s\) \['X', 'y'\]"):
        load_source(f"npz:{tmp_path / 'bad.npz'}")
    with pytest.raises(BakeoffError, match="not found"):
        load_source(f"npz:{tmp_path / 'nope.npz'}")
    with pytest.raises(BakeoffError, match="unknown built-in data 'spot3d'"):
        load_source("builtin:spot3d")
    with pytest.raises(BakeoffError, match=r"unknown parameter\(s\) \['snrr'\]"):
        load_source("builtin:spots3d", {"snrr": 2})


def test_normalisation_is_per_sample():
    x = np.stack([np.linspace(0, 10, 27).reshape(1, 3, 3, 3), np.linspace(5, 6, 27).reshape(1, 3, 3, 3)])
    mm = normalize(x.astype(np.float32), "minmax")
    assert np.allclose(mm.min(axis=(1, 2, 3, 4)), 0) and np.allclose(mm.max(axis=(1, 2, 3, 4)), 1)
    z = normalize(x.astype(np.float32), "zscore")
    assert np.allclose(z.mean(axis=(1, 2, 3, 4)), 0, atol=1e-6) and np.allclose(z.std(axis=(1, 2, 3, 4)), 1, atol=1e-5)


USER_SOURCE = '''
import numpy as np

def patches(n, size=8, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(size=(n, size, size, size)).astype("float32") + y[:, None, None, None]
    return {"X": X, "y": y, "ids": [f"p{i:03d}" for i in range(n)], "class_names": ["empty", "spot"]}

def cells(n=6, size=24):
    rng = np.random.default_rng(1)
    masks = [(rng.random((size, size)) > 0.7).astype("uint8") for _ in range(n)]
    return {"images": [m + rng.normal(0, 0.1, m.shape) for m in masks], "masks": masks}

def not_a_dict(n=4):
    return np.zeros((n, 8, 8))
'''


def test_a_users_own_loader_from_the_study_file(tmp_path, monkeypatch, tiny_raw):
    """data.source: package.module:callable, with data.params checked against its signature."""
    from bakeoff.api import Study

    (tmp_path / "labdata.py").write_text(USER_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    tiny_raw["data"].update(source="labdata:patches", params={"n": 40, "size": 8})
    s = Study.from_dict(tiny_raw)
    assert len(s.plan()) == 4
    d = s.context.data
    assert d.X.shape == (40, 1, 8, 8, 8) and d.ids[3] == "p003" and d.y.tolist() == [0, 1] * 20
    assert d.meta["class_names"] == ["empty", "spot"]

    tiny_raw["data"]["params"] = {"n": 40, "sise": 8}
    with pytest.raises(BakeoffError, match=r"data.params \(labdata:patches\): unknown parameter\(s\) \['sise'\] "
                                           r"\('sise': did you mean 'size'\?\)"):
        Study.from_dict(tiny_raw).plan()
    tiny_raw["data"].update(source="labdata:not_a_dict", params={})
    with pytest.raises(BakeoffError, match=r"returned ndarray; expected a dict with arrays \['X', 'y'\]"):
        Study.from_dict(tiny_raw).plan()
    tiny_raw["data"]["source"] = "labdata:patchez"
    with pytest.raises(BakeoffError, match="labdata has no callable 'patchez' \\(did you mean 'patches'\\?\\)"):
        Study.from_dict(tiny_raw).plan()

    seg = {"name": "seg", "task": "semantic_segmentation", "data": {"source": "labdata:cells"},
           "protocol": {"epochs": 1, "batch_size": 2, "patch_size": [16, 16], "iterations_per_epoch": 2},
           "contenders": {"unet": {"model": "monai:UNet", "params": {"channels": [4, 8], "strides": [2]}}},
           "evaluation": {"speed": False}}
    s = Study.from_dict(seg)
    s.plan()
    assert len(s.context.data.ids) == 6 and s.context.task.num_classes == 2


def test_a_mistyped_source_kind_is_named_with_the_registered_ones():
    with pytest.raises(BakeoffError, match=r"'npzz' is neither a data source \(did you mean 'npz'\?\) nor an "
                                           r"importable module; expected one of \['builtin', 'csv', 'folder', "
                                           r"'npz', 'npz_dir', 'tiff_dir'\]"):
        load_source("npzz:x.npz")
