"""Dense data sources: lazy npz_dir / tiff_dir reading, the built-ins, and every bad input as one line."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import tifffile

from bakeoff.data.segdata import NpyMemberSource, load_dense_source
from bakeoff.errors import BakeoffError
from tests.conftest import write_study
from tests.test_cli import _assert_clean_error, bakeoff


def make_npz_dir(root, n=(4, 2, 2), size=32, K=3, seed=0, compressed=False):
    rng = np.random.default_rng(seed)
    for part, count in zip(("train", "val", "test"), n):
        (root / part).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            mask = rng.integers(0, K, (size, size)).astype(np.uint8)
            image = (mask * 1.0 + rng.normal(size=mask.shape)).astype(np.float32)
            (np.savez_compressed if compressed else np.savez)(root / part / f"im{i}.npz", image=image, mask=mask)
    return root


def test_npz_members_are_memory_mapped_and_read_lazily(tmp_path):
    root = make_npz_dir(tmp_path / "d")
    src = NpyMemberSource(root / "train" / "im0.npz", "image")
    assert src.offset is not None  # uncompressed member: mapped at its offset in the zip
    with np.load(root / "train" / "im0.npz") as f:
        full = f["image"]
    np.testing.assert_array_equal(src.read((slice(3, 9), slice(5, 7))), full[3:9, 5:7])
    comp = make_npz_dir(tmp_path / "c", compressed=True)
    csrc = NpyMemberSource(comp / "train" / "im0.npz", "image")
    assert csrc.offset is None and csrc.read().shape == (32, 32)
    data = load_dense_source(f"npz_dir:{root}", None, spatial_dims=2, num_classes=3, spacing=None,
                             normalize="zscore")
    assert list(data.parts) == ["train"] * 4 + ["val"] * 2 + ["test"] * 2
    assert data.class_pixels.sum() == 8 * 32 * 32
    x, y = data.patch(0, (20, 20), (16, 16))  # runs past the border: zero-padded
    assert x.shape == (1, 16, 16) and y.shape == (16, 16) and np.all(y[12:] == 0)


def test_tiff_dir(tmp_path):
    rng = np.random.default_rng(0)
    for part in ("train", "val"):
        for sub in ("images", "masks"):
            (tmp_path / part / sub).mkdir(parents=True)
        for i in range(3):
            m = rng.integers(0, 2, (24, 24)).astype(np.uint8)
            tifffile.imwrite(tmp_path / part / "images" / f"a{i}.tif", (m * 100 + rng.integers(0, 50, m.shape)).astype(np.uint16))
            tifffile.imwrite(tmp_path / part / "masks" / f"a{i}.tif", m)
    with pytest.warns(UserWarning, match="no test images"):
        from bakeoff.config import SplitConfig
        from bakeoff.data.splits import make_splits

        data = load_dense_source(f"tiff_dir:{tmp_path}", None, spatial_dims=2, num_classes=2, spacing=[0.5, 0.5],
                                 normalize="minmax")
        split = make_splits(data, SplitConfig())[0]
    assert len(split.train) == 3 and list(split.test) == list(split.val)
    assert data.image(0).max() == pytest.approx(1.0) and data.spacing == (0.5, 0.5)


def test_builtins():
    nuc = load_dense_source("builtin:nuclei2d", None, spatial_dims=2, num_classes=None, spacing=None,
                            normalize="minmax")
    assert len(nuc) == 16 and nuc.num_classes == 2 and set(nuc.parts) == {"train", "val", "test"}
    assert 0.05 < nuc.class_pixels[:, 1].sum() / nuc.class_pixels.sum() < 0.5
    org = load_dense_source("builtin:organelles2d", {"n": 6, "size": 64}, spatial_dims=2, num_classes=None,
                            spacing=None, normalize="zscore")
    frac = org.class_pixels.sum(0) / org.class_pixels.sum()
    assert org.num_classes == 6 and np.all(frac > 0) and np.all(frac[2:] < 0.1)  # rare membrane classes
    cryo = load_dense_source("builtin:cryoem2d", {"n": 4, "size": 64, "particles": 5}, spatial_dims=2,
                             num_classes=2, spacing=None, normalize="zscore")
    assert all(len(c) == 5 for c in cryo.centres)


SEG_STUDY = {
    "name": "seg", "task": "semantic_segmentation",
    "data": {"source": "npz_dir:DATA", "num_classes": 3},
    "protocol": {"epochs": 1, "batch_size": 2, "patch_size": [16, 16], "iterations_per_epoch": 2},
    "contenders": {"unet": {"model": "monai:UNet", "params": {"channels": [4, 8], "strides": [2]}}},
    "evaluation": {"speed": False},
}


def _write(tmp_path, data_root, **data):
    raw = {**SEG_STUDY, "data": {**SEG_STUDY["data"], "source": f"npz_dir:{data_root}", **data}}
    return write_study(tmp_path / "s.yaml", raw)


def _corrupt(root, how):
    f = root / "train" / "im1.npz"
    if how == "shape":
        np.savez(f, image=np.zeros((32, 32), np.float32), mask=np.zeros((30, 32), np.uint8))
        return f, "mask has shape (30, 32)"
    if how == "values":
        np.savez(f, image=np.zeros((32, 32), np.float32), mask=np.full((32, 32), 7, np.uint8))
        return f, "mask values [7] outside 0..2"
    if how == "float":
        np.savez(f, image=np.zeros((32, 32), np.float32), mask=np.zeros((32, 32), np.float32))
        return f, "expected integer class labels"
    if how == "nan":
        img = np.zeros((32, 32), np.float32)
        img[3, 3] = np.nan
        np.savez(f, image=img, mask=np.zeros((32, 32), np.uint8))
        return f, "NaN or inf pixels"
    if how == "corrupt":
        f.write_bytes(b"PK\x03\x04 not really a zip")
        return f, "cannot read as .npz"
    if how == "no_mask":
        np.savez(f, image=np.zeros((32, 32), np.float32))
        return f, "no array 'mask'"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["shape", "values", "float", "nan", "corrupt", "no_mask"])
def test_bad_npz_data_is_one_clear_line(tmp_path, how):
    root = make_npz_dir(tmp_path / "d")
    path, expect = _corrupt(root, how)
    out = tmp_path / "out"
    proc = bakeoff("run", _write(tmp_path, root), "--out", out)
    _assert_clean_error(proc, str(path), expect)
    assert not out.exists()


def test_empty_folder_and_corrupt_tiff(tmp_path):
    root = make_npz_dir(tmp_path / "d")
    for f in (root / "val").glob("*.npz"):
        f.unlink()
    proc = bakeoff("run", _write(tmp_path, root), "--out", tmp_path / "out")
    _assert_clean_error(proc, str(root / "val"), "is empty")
    t = tmp_path / "t"
    for part in ("train", "val"):
        (t / part / "images").mkdir(parents=True)
        (t / part / "masks").mkdir(parents=True)
        tifffile.imwrite(t / part / "images" / "a.tif", np.zeros((8, 8), np.uint8))
        tifffile.imwrite(t / part / "masks" / "a.tif", np.zeros((8, 8), np.uint8))
    (t / "train" / "images" / "a.tif").write_bytes(b"II*\x00garbage")
    raw = {**SEG_STUDY, "data": {"source": f"tiff_dir:{t}", "num_classes": 3}}
    proc = bakeoff("run", write_study(tmp_path / "t.yaml", raw), "--out", tmp_path / "out2")
    _assert_clean_error(proc, str(t / "train" / "images" / "a.tif"), "cannot read as TIFF")


def test_class_missing_from_training_is_warned_and_undefined(tmp_path):
    root = make_npz_dir(tmp_path / "d", K=2)  # masks hold 0 and 1 only; the study declares 3 classes
    out = tmp_path / "out"
    proc = bakeoff("run", _write(tmp_path, root), "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "never occur in the training images" in proc.stderr
    import pandas as pd

    res = pd.read_csv(out / "results.csv")
    # no true pixels of class 2: recall is undefined; Dice is 0 where the model still predicts it, else undefined
    assert np.isnan(res.loc[0, "test_recall_class2"])
    d = res.loc[0, "test_dice_class2"]
    assert np.isnan(d) or d == 0
    assert np.isfinite(res.loc[0, "test_mean_dice"])


def test_corrupt_zip_member_names_file(tmp_path):
    f = tmp_path / "x.npz"
    with zipfile.ZipFile(f, "w") as zf:
        zf.writestr("image.npy", b"\x93NUMPY garbage")
    with pytest.raises(BakeoffError, match=str(f)):
        NpyMemberSource(f, "image")


@pytest.mark.parametrize("protocol, expect", [
    ({"augment": ["rotate"]}, "protocol.augment: 'rotate' is not available for segmentation"),
    ({"loss": {"name": "bce"}}, "protocol.loss.name: bce is for binary classification (one logit); this study is "
                                "segmentation and particle picking"),
    ({"patch_size": [16, 16, 16]}, "protocol.patch_size: [16, 16, 16] has 3 values"),
])
def test_settings_that_do_not_fit_segmentation_are_refused_before_training(tmp_path, protocol, expect):
    root = make_npz_dir(tmp_path / "d")
    raw = {**SEG_STUDY, "data": {**SEG_STUDY["data"], "source": f"npz_dir:{root}"},
           "protocol": {**SEG_STUDY["protocol"], **protocol}}
    out = tmp_path / "out"
    proc = bakeoff("run", write_study(tmp_path / "s.yaml", raw), "--out", out)
    _assert_clean_error(proc, expect)
    assert not out.exists()


def test_3d_segmentation_end_to_end(tmp_path):
    """3D volumes: patches, joint flips/rot90, 3D sliding window, HD95/NSD with anisotropic spacing."""
    rng = np.random.default_rng(0)
    root = tmp_path / "vol"
    for part, n in (("train", 3), ("val", 2), ("test", 2)):
        (root / part).mkdir(parents=True)
        for i in range(n):
            mask = np.zeros((12, 20, 20), np.uint8)
            c = rng.integers(6, 14, 3)
            mask[c[0] - 3:c[0] + 3, c[1] - 4:c[1] + 4, c[2] - 4:c[2] + 4] = 1
            np.savez(root / part / f"v{i}.npz", image=(mask + 0.3 * rng.normal(size=mask.shape)).astype(np.float32),
                     mask=mask)
    raw = {**SEG_STUDY, "data": {"source": f"npz_dir:{root}", "num_classes": 2, "spatial_dims": 3,
                                 "spacing": [2.0, 0.5, 0.5]},
           "protocol": {**SEG_STUDY["protocol"], "patch_size": [8, 16, 16], "augment": ["flip", "rot90"]}}
    out = tmp_path / "out"
    proc = bakeoff("run", write_study(tmp_path / "s.yaml", raw), "--out", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import pandas as pd

    res = pd.read_csv(out / "results.csv")
    assert res.loc[0, "status"] == "done" and np.isfinite(res.loc[0, "test_mean_hd95"])
    logged = pd.read_csv(next(out.glob("runs/*/*/logs/csv/metrics.csv")))
    assert {"lr", "grad_norm", "val/mean_dice", "train/loss"} <= set(logged.columns)


def test_unknown_feature_layer_is_refused_with_close_names(tmp_path):
    root = make_npz_dir(tmp_path / "d")
    raw = {**SEG_STUDY, "data": {**SEG_STUDY["data"], "source": f"npz_dir:{root}"},
           "contenders": {"unet": {**SEG_STUDY["contenders"]["unet"], "feature_layer": "model.O"}}}
    proc = bakeoff("run", write_study(tmp_path / "s.yaml", raw), "--out", tmp_path / "out")
    _assert_clean_error(proc, "contenders.unet.feature_layer: 'model.O' is not a module of monai:UNet", "model.0")
