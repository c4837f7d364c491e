"""The real-image sample sources (scikit-learn's digits, the stardist wheel's nuclei image): their images and
labels are the packages' own, recomputed here from the packages' files."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from sklearn.datasets import load_digits

from bakeoff.data.real_builtin import load_digits_binary, load_nuclei_patches
from bakeoff.data.seg_builtin import stardist_data_folder
from bakeoff.data.sources import load_source


def test_digits_questions_are_sklearns_scans_and_labels():
    d = load_digits()
    parity = load_digits_binary("parity")
    assert parity["X"].shape == (1797, 8, 8) and np.allclose(parity["X"], d.images / 16)
    assert np.array_equal(parity["y"], d.target % 2) and parity["class_names"] == ["even", "odd"]
    pair = load_digits_binary("pair", pair=(3, 8), size=16)
    keep = np.isin(d.target, [3, 8])
    assert pair["X"].shape == (keep.sum(), 16, 16) and np.array_equal(pair["y"], d.target[keep] == 8)
    assert np.allclose(pair["X"][:, ::2, ::2], d.images[keep] / 16)  # each pixel repeated 2 x 2
    assert list(pair["ids"][:2]) == [f"digit{i:04d}" for i in np.flatnonzero(keep)[:2]]
    noisy = load_digits_binary("low_high", noise=0.5, seed=1)
    assert np.array_equal(noisy["y"], d.target >= 5) and 0.4 < np.std(noisy["X"] - d.images / 16) < 0.6
    with pytest.raises(ValueError, match="task must be one of"):
        load_digits_binary("odd")


def test_nuclei_patches_are_labelled_by_the_mask_at_their_centre():
    folder = stardist_data_folder()
    img = tifffile.imread(folder / "img2d.tif").astype(np.float32)
    mask = tifffile.imread(folder / "mask2d.tif") > 0
    out = load_nuclei_patches(n=200, patch=16, seed=3)
    assert out["X"].shape == (200, 16, 16) and out["y"].sum() == 100
    z = (img - img.mean()) / img.std()
    for i in range(0, 200, 17):
        r, c = (int(v) for v in out["ids"][i][1:].split("c"))
        assert mask[r, c] == bool(out["y"][i])
        assert np.allclose(out["X"][i], z[r - 8:r + 8, c - 8:c + 8])
    assert len(np.unique(out["groups"])) > 20


def test_the_sources_load_as_two_dimensional_binary_data():
    data = load_source("builtin:digits", {"task": "pair", "pair": [4, 9]})
    assert data.X.shape[1:] == (1, 8, 8) and set(np.unique(data.y)) == {0, 1}
    assert data.meta["class_names"] == ["4", "9"]
