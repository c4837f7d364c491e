"""Real images that packages ship, as sample sources for tiny studies and suites (no download):
scikit-learn's handwritten digits and patches of the stardist wheel's fluorescent nuclei image."""

from __future__ import annotations

import numpy as np

DIGIT_TASKS = ("parity", "low_high", "pair")


def load_digits_binary(task: str = "parity", pair: tuple[int, int] = (3, 8), size: int = 8, noise: float = 0.0,
                       seed: int = 0) -> dict[str, np.ndarray]:
    """scikit-learn's handwritten digits (1,797 real 8 x 8 scans) as a two-class question.

    ``task``: "parity" (odd = 1), "low_high" (5-9 = 1) or "pair" (the two digits in ``pair``; the second
    is 1). ``size``: 8, or a multiple of 8 (each pixel repeated); ``noise``: Gaussian noise (standard
    deviation, on the [0, 1] intensity scale) added with ``seed`` to make the question harder.
    """
    from sklearn.datasets import load_digits

    if task not in DIGIT_TASKS:
        raise ValueError(f"task must be one of {DIGIT_TASKS}, got {task!r}")
    if size < 8 or size % 8:
        raise ValueError(f"size must be a multiple of 8, got {size}")
    d = load_digits()
    images, target, idx = d.images / 16.0, d.target, np.arange(len(d.target))
    if task == "pair":
        a, b = (int(v) for v in pair)
        keep = np.isin(target, [a, b])
        images, target, idx = images[keep], target[keep], idx[keep]
        y = (target == b).astype(np.int64)
        names = [str(a), str(b)]
    elif task == "parity":
        y, names = (target % 2).astype(np.int64), ["even", "odd"]
    else:
        y, names = (target >= 5).astype(np.int64), ["0-4", "5-9"]
    x = np.kron(images, np.ones((size // 8, size // 8)))
    if noise:
        x = x + np.random.default_rng(seed).normal(0, noise, x.shape)
    ids = np.array([f"digit{i:04d}" for i in idx])
    return {"X": x.astype(np.float32), "y": y, "ids": ids, "digit": target.astype(np.int64),
            "class_names": names}


def load_nuclei_patches(n: int = 600, patch: int = 16, ring: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    """Patches of the stardist wheel's real 2D nuclei image (512 x 512, fluorescence): is the centre pixel
    inside a nucleus? Half the patches are centred inside a nucleus, a quarter on background, a quarter on
    background within ``ring`` pixels of a nucleus (the hard cases). ``groups``: the 64 x 64 tile of the
    image a patch's centre lies in (64 tiles), so a grouped split keeps neighbouring patches together."""
    import tifffile
    from scipy.ndimage import distance_transform_edt

    from bakeoff.data.seg_builtin import stardist_data_folder

    folder = stardist_data_folder()
    img = tifffile.imread(folder / "img2d.tif").astype(np.float32)
    inside = tifffile.imread(folder / "mask2d.tif") > 0
    img = (img - img.mean()) / img.std()
    half = patch // 2
    rng = np.random.default_rng(seed)
    H, W = img.shape
    valid = np.zeros_like(inside)
    valid[half:H - patch + half + 1, half:W - patch + half + 1] = True
    near = (distance_transform_edt(~inside) <= ring) & ~inside
    pools = [(np.flatnonzero((inside & valid).ravel()), n - 2 * (n // 4), 1),
             (np.flatnonzero((~inside & ~near & valid).ravel()), n // 4, 0),
             (np.flatnonzero((near & valid).ravel()), n // 4, 0)]
    centres, labels = [], []
    for pool, count, label in pools:
        centres.extend(rng.choice(pool, size=count, replace=False).tolist())
        labels.extend([label] * count)
    rows, cols = np.unravel_index(np.asarray(centres), img.shape)
    X = np.stack([img[r - half:r - half + patch, c - half:c - half + patch] for r, c in zip(rows, cols)])
    groups = (rows // 64) * (W // 64 + 1) + cols // 64
    ids = np.array([f"r{r}c{c}" for r, c in zip(rows, cols)])
    return {"X": X.astype(np.float32), "y": np.asarray(labels, np.int64), "groups": groups, "ids": ids,
            "class_names": ["outside", "nucleus"]}
