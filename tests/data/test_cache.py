"""Image files decoded once into an on-disk cache: stored dtypes, the key, one build under concurrency and
after kill -9, per-batch normalisation against the in-memory reference, and streamed batches identical to
in-memory ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bakeoff.data.cache import (
    BUILDS_LOG,
    ImageFiles,
    ImageStore,
    LazyImages,
    Normalizer,
    PairFiles,
    PairStore,
    _ChannelStats,
)
from bakeoff.data.images import read_image
from bakeoff.data.sources import load_source
from bakeoff.data.transforms import normalize
from bakeoff.errors import BakeoffError
from bakeoff.train.data import ArrayBatches
from tests.images.pngs import write_pngs


def builds(root: Path) -> list[dict]:
    log = root / BUILDS_LOG
    return [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []


def test_stored_dtypes_and_values_match_the_decoded_images(tmp_path):
    import tifffile

    manifest = write_pngs(tmp_path, 6)
    data = load_source(f"csv:{manifest}")
    assert isinstance(data.X, LazyImages) and data.X.shape == (6, 3, 12, 12)
    store = data.X.store
    assert not store.ready  # loading read the headers only
    store.root = tmp_path / "cache"
    assert store.files.dtype == np.uint8 and store.files.divisor() == 255
    raw = data.X.raw()
    assert raw.dtype == np.uint8
    for i in range(6):  # the stored pixels are the file's, exactly; the network sees uint8 / 255
        np.testing.assert_array_equal(raw[i], np.moveaxis(np.asarray(Image.open(tmp_path / "img" / f"{i}.png")), -1, 0))
        np.testing.assert_array_equal(np.asarray(data.X[i]), read_image(tmp_path / "img" / f"{i}.png", None, None))
    # 16-bit and float TIFFs keep their type (uint16 / 65535; float as it is)
    t16 = (np.arange(64, dtype=np.uint16) * 1000).reshape(8, 8)
    tifffile.imwrite(tmp_path / "a.tif", t16)
    tifffile.imwrite(tmp_path / "b.tif", t16 + 1)
    files = ImageFiles([tmp_path / "a.tif", tmp_path / "b.tif"], None, None, "t")
    assert files.dtype == np.uint16
    s16 = ImageStore(files, tmp_path / "cache")
    np.testing.assert_array_equal(s16.read(np.array([1, 0]))[:, 0], np.stack([t16 + 1, t16]))
    tifffile.imwrite(tmp_path / "f.tif", t16.astype(np.float32) / 7)
    ff = ImageFiles([tmp_path / "f.tif", tmp_path / "a.tif"], None, None, "f")
    assert ff.dtype == np.float32  # mixed: float, integer images scaled to [0, 1] as before
    got = ImageStore(ff).read(np.array([0, 1]))
    np.testing.assert_allclose(got[0, 0], t16 / 7, rtol=1e-6)
    np.testing.assert_allclose(got[1, 0], t16 / 65535, rtol=1e-6)


def test_resized_and_converted_as_pillow_does(tmp_path):
    manifest = write_pngs(tmp_path, 3, size=20)
    data = load_source(f"csv:{manifest}", channels=1, image_size=10)
    raw = data.X.raw()
    assert raw.shape == (3, 1, 10, 10) and raw.dtype == np.uint8
    ref = np.asarray(Image.open(tmp_path / "img" / "1.png").convert("L").resize((10, 10), Image.BILINEAR))
    np.testing.assert_array_equal(raw[1, 0], ref)


@pytest.mark.parametrize("method", ["minmax", "zscore", "imagenet", "none"])
def test_per_batch_normalisation_matches_the_array_reference(method):
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 256, (5, 3, 9, 7), dtype=np.uint8)
    ref = normalize(raw.astype(np.float32) / 255, method)  # what in-memory arrays get, numpy
    got = Normalizer(method, 255.0)(torch.from_numpy(raw)).numpy()
    if method in ("minmax", "none"):
        np.testing.assert_array_equal(got, ref)  # elementwise: the same float32 operations
    else:
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_dataset_statistics_match_numpy_over_every_pixel(tmp_path):
    rng = np.random.default_rng(2)
    raw = rng.integers(0, 256, (70, 3, 5, 5), dtype=np.uint8)
    acc = _ChannelStats(3)
    for start in range(0, 70, 16):  # chunk by chunk, as the decode sees them
        acc.add(raw[start:start + 16], 255.0)
    mean, std = acc.result()
    x = raw.astype(np.float64) / 255
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(std, x.std(axis=(0, 2, 3)), rtol=1e-10)
    got = Normalizer("dataset", 255.0, tuple(mean), tuple(std))(torch.from_numpy(raw)).numpy()
    np.testing.assert_allclose(got, normalize(raw.astype(np.float32) / 255, "dataset"), rtol=1e-4, atol=1e-4)


def test_one_build_a_reopen_and_a_new_key_for_a_changed_file_or_setting(tmp_path):
    manifest = write_pngs(tmp_path, 10)
    root = tmp_path / "cache"
    first = load_source(f"csv:{manifest}")
    first.X.store.root = root
    a = first.X.raw()
    again = load_source(f"csv:{manifest}")
    again.X.store.root = root
    np.testing.assert_array_equal(again.X.raw(), a)
    assert len(builds(root)) == 1  # reopened, not decoded again
    assert first.fingerprint() == again.fingerprint()
    # a changed image: another key, another build, another fingerprint
    img = np.asarray(Image.open(tmp_path / "img" / "3.png")).copy()
    img[0, 0] = 255 - img[0, 0]
    Image.fromarray(img).save(tmp_path / "img" / "3.png")
    os.utime(tmp_path / "img" / "3.png", ns=(time.time_ns(), time.time_ns() + 10**9))
    changed = load_source(f"csv:{manifest}")
    changed.X.store.root = root
    assert changed.fingerprint() != first.fingerprint()
    assert changed.X.raw()[3, :, 0, 0].tolist() == img[0, 0].tolist()
    resized = load_source(f"csv:{manifest}", image_size=6)
    resized.X.store.root = root
    resized.X.raw()
    assert len(builds(root)) == 3 and len({b["key"] for b in builds(root)}) == 3


BUILD_SCRIPT = """
import sys
from pathlib import Path
from bakeoff.data.sources import load_source
data = load_source("csv:" + sys.argv[1])
data.X.store.root = Path(sys.argv[2])
data.X.raw()
print("ok")
"""


def _build_in_process(manifest: Path, root: Path, kill_at: str | None = None) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop("BAKEOFF_KILL_AT", None)
    if kill_at:
        env["BAKEOFF_KILL_AT"] = kill_at
    return subprocess.Popen([sys.executable, "-c", BUILD_SCRIPT, str(manifest), str(root)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("point", ["cache:2", "cache-rename"])
def test_killed_build_is_never_read_and_the_next_one_completes(tmp_path, point):
    manifest = write_pngs(tmp_path, 200, size=8)
    root = tmp_path / "cache"
    proc = _build_in_process(manifest, root, point)
    proc.wait(timeout=120)
    assert proc.returncode == -9  # SIGKILL mid-build
    assert builds(root) == [] and not [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    data = load_source(f"csv:{manifest}")
    data.X.store.root = root
    got = data.X.raw()  # rebuilt whole (the half-written one removed), never read
    ref = load_source(f"csv:{manifest}").X.raw()  # decoded in memory, no cache
    np.testing.assert_array_equal(got, ref)
    assert len(builds(root)) == 1 and not list(root.glob(".*.partial"))


def test_concurrent_processes_build_once(tmp_path):
    manifest = write_pngs(tmp_path, 300, size=32)
    root = tmp_path / "cache"
    procs = [_build_in_process(manifest, root) for _ in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert len(builds(root)) == 1


def test_a_disk_too_small_is_refused_before_decoding(tmp_path, monkeypatch):
    import shutil

    manifest = write_pngs(tmp_path, 4)
    data = load_source(f"csv:{manifest}")
    data.X.store.root = tmp_path / "cache"
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, 1000))
    with pytest.raises(BakeoffError, match=r"needs 1.7 KB .* has 1.0 KB free; expected room .* data.cache_dir"):
        data.X.raw()
    assert builds(tmp_path / "cache") == []


@pytest.mark.parametrize("shuffle,world", [(True, 1), (False, 1), (True, 2)])
def test_streamed_batches_equal_in_memory_ones(tmp_path, shuffle, world):
    manifest = write_pngs(tmp_path, 37)
    data = load_source(f"csv:{manifest}")
    data.X.store.root = tmp_path / "cache"
    data.X.method = "zscore"
    X = data.X[np.arange(3, 37)]
    y = data.y[3:]
    data.X.store.in_memory = True
    mem = ArrayBatches(X, y, 8, shuffle=shuffle, seed=5, shard=(world - 1, world))
    data.X.store.in_memory = False
    streamed = ArrayBatches(X, y, 8, shuffle=shuffle, seed=5, shard=(world - 1, world))
    assert mem.stream is None and streamed.stream is not None
    for epoch in (0, 1):
        mem.set_epoch(epoch)
        streamed.set_epoch(epoch)
        a, b = list(mem), list(streamed)
        assert len(a) == len(b) == len(mem)
        for (xa, ya), (xb, yb) in zip(a, b):
            assert xa.dtype == torch.float32
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # an epoch left early stops its reader thread
    it = iter(streamed)
    next(it)
    it.close()


def test_image_mask_pairs_decode_once_and_read_patches(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "i").mkdir()
    (tmp_path / "m").mkdir()
    images, masks = [], []
    for k, size in enumerate([(20, 24), (16, 16)]):  # images of different sizes
        img = rng.integers(0, 256, size, dtype=np.uint8)
        mask = (rng.random(size) > 0.7).astype(np.uint8)
        Image.fromarray(img).save(tmp_path / "i" / f"{k}.png")
        Image.fromarray(mask).save(tmp_path / "m" / f"{k}.png")
        images.append(img)
        masks.append(mask)
    files = PairFiles([tmp_path / "i" / f"{k}.png" for k in range(2)], [tmp_path / "m" / f"{k}.png" for k in range(2)],
                      None, "pairs")
    direct = PairStore(files)  # no cache folder: each read decodes its file
    store = PairStore(files, tmp_path / "cache")
    for k in range(2):
        np.testing.assert_array_equal(direct.read(k, "image")[0], images[k])
        np.testing.assert_array_equal(store.read(k, "mask", (slice(2, 9), slice(3, 7))), masks[k][2:9, 3:7])
    assert len(builds(tmp_path / "cache")) == 1
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "m" / "1.png")
    with pytest.raises(BakeoffError, match="mask is a RGB image; expected a label image"):
        PairFiles(files.images, files.masks, None, "pairs").heads()


def test_a_long_decode_says_how_far_it_is_with_an_eta(capsys):
    from bakeoff.data import cache

    clock = iter([0.0, 6.0, 7.0, 12.5, 20.0])
    say = cache.Say("decoding data.csv", 1000, clock=lambda: next(clock))  # t0 = 0
    say(300)  # 6 s: a line (plain text: a log file or a pipe gets it too)
    say(350)  # 7 s: quiet (one line per 5 s at most)
    say(600)  # 12.5 s
    say(1000)  # done
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["decoding data.csv: 300/1,000 images (30%), 6 s, about 14 s left",
                     "decoding data.csv: 600/1,000 images (60%), 12 s, about 8 s left",
                     "decoding data.csv: 1,000/1,000 images (100%), 20 s, done"]
    quick = cache.Say("x", 10, clock=lambda: 1.0)
    quick(10)
    assert capsys.readouterr().err == ""  # a quick decode prints nothing


def test_a_large_npz_is_read_by_sample_in_place_or_through_the_cache(tmp_path, monkeypatch):
    """Above NPZ_IN_MEMORY_BYTES an npz: X is read sample by sample: in place from an uncompressed member of a
    kept type, else decoded once into the cache; the network sees what the in-memory path gives it."""
    from bakeoff.data import sources

    rng = np.random.default_rng(3)
    X8 = rng.integers(0, 256, (30, 7, 9), dtype=np.uint8)  # 2D single-channel, saved the obvious way
    X64 = rng.normal(size=(30, 2, 5, 6, 6))  # 3D, two channels, float64
    y = np.arange(30) % 2
    np.savez(tmp_path / "u8.npz", X=X8, y=y)
    np.savez_compressed(tmp_path / "f64.npz", X=X64, y=y)
    small = {n: load_source(f"npz:{tmp_path / n}.npz") for n in ("u8", "f64")}
    assert not small["u8"].lazy  # small: read into memory as before
    monkeypatch.setattr(sources, "NPZ_IN_MEMORY_BYTES", 0)
    for name in ("u8", "f64"):
        data = load_source(f"npz:{tmp_path / name}.npz")
        assert data.lazy and data.X.shape == small[name].X.shape and data.spatial_dims == small[name].spatial_dims
        data.X.store.root = tmp_path / "cache"
        for method in ("minmax", "none"):
            data.X.method, data.X._norm = method, None
            np.testing.assert_array_equal(np.asarray(data.X), normalize(small[name].X, method))
    stores = sorted(p.name for p in (tmp_path / "cache").iterdir() if p.is_dir())
    arrays = [p for p in (tmp_path / "cache").glob("*/images.npy")]
    assert len(stores) == 2 and len(arrays) == 1  # uint8 read in place: only its meta data are kept
    assert len(builds(tmp_path / "cache")) == 2
