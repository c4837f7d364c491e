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
