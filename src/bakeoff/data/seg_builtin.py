"""Built-in segmentation data: synthetic EM organelles, synthetic cryo-EM micrographs, real nuclei.

The two generators are pure functions of their arguments. ``nuclei2d`` is one real fluorescence image
(512 x 512) with its instance mask, shipped inside the ``stardist`` wheel: a single-image demo, tiled
with a spatial split, not a benchmark.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from scipy.ndimage import binary_dilation, gaussian_filter

from bakeoff.errors import BakeoffError

ORGANELLE_CLASSES = ["background", "nucleus", "mitochondria_membrane", "er_membrane", "plasma_membrane",
                     "golgi_membrane"]


def _texture(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    t = gaussian_filter(rng.normal(size=shape), sigma)
    return (t - t.mean()) / (t.std() + 1e-8)


def _ellipse(shape: tuple[int, int], cy: float, cx: float, ry: float, rx: float, angle: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    c, s = np.cos(angle), np.sin(angle)
    u, v = (yy - cy) * c + (xx - cx) * s, -(yy - cy) * s + (xx - cx) * c
    return (u / ry) ** 2 + (v / rx) ** 2 <= 1


def _outline(region: np.ndarray, width: int) -> np.ndarray:
    return region & np.asarray(binary_dilation(~region, iterations=width))


def make_organelles2d(n: int = 12, size: int = 96, noise: float = 0.35, seed: int = 0) -> dict:
    """EM-like 2D images with 6 labels: background and 5 imbalanced organelle classes.

    Membranes are dark lines on a grey cytoplasm texture: the plasma membrane bounds a large cell, the
    nucleus is a darker filled region with a double envelope, mitochondria are small ellipses with a
    membrane outline and striped cristae, ER membranes are thin wavy lines, Golgi membranes are short
    stacked parallel arcs. Labels are painted in that order (later classes on top).
    """
    if n < 3:
        raise ValueError(f"n must be at least 3, got {n}")
    if size < 48:
        raise ValueError(f"size must be at least 48, got {size}")
    rng = np.random.default_rng(seed)
    shape = (size, size)
    images, masks = [], []
    yy, xx = np.mgrid[:size, :size]
    for _ in range(n):
        img = 0.55 + 0.06 * _texture(rng, shape, 2.0)
        mask = np.zeros(shape, np.uint8)
        # plasma membrane: boundary of a large cell shape; outside it is extracellular space (brighter)
        cell = _ellipse(shape, size / 2 + rng.uniform(-5, 5), size / 2 + rng.uniform(-5, 5),
                        size * rng.uniform(0.42, 0.5), size * rng.uniform(0.42, 0.5), rng.uniform(0, np.pi))
        img[~cell] += 0.15
        pm = _outline(cell, 2)
        # nucleus: darker, granular, with an envelope
        ny, nx = size / 2 + rng.uniform(-size / 8, size / 8, 2)
        nucleus = _ellipse(shape, ny, nx, size * rng.uniform(0.14, 0.2), size * rng.uniform(0.14, 0.2),
                           rng.uniform(0, np.pi)) & cell
        img[nucleus] -= 0.12 - 0.05 * _texture(rng, shape, 1.0)[nucleus]
        mask[nucleus] = 1
        img[_outline(nucleus, 2)] -= 0.2
        # mitochondria: membrane outline of small ellipses, cristae stripes inside
        for _ in range(rng.integers(2, 5)):
            for _try in range(20):
                cy, cx = rng.uniform(0.15 * size, 0.85 * size, 2)
                region = _ellipse(shape, cy, cx, rng.uniform(4, 7), rng.uniform(7, 12), rng.uniform(0, np.pi))
                if not (region & nucleus).any() and not (region & ~cell).any():
                    break
            else:
                continue
            mem = _outline(region, 2)
            img[region] -= 0.05
            stripes = region & (np.sin((yy + xx) * 0.9) > 0.6) & ~mem
            img[stripes] -= 0.1
            img[mem] -= 0.25
            mask[mem] = 2
        # ER membranes: thin wavy lines (1-2 px)
        for _ in range(rng.integers(2, 5)):
            y0, a, f, ph = rng.uniform(0.15 * size, 0.85 * size), rng.uniform(2, 5), rng.uniform(0.05, 0.15), rng.uniform(0, 6)
            x0, length = rng.uniform(0.1 * size, 0.5 * size), rng.uniform(0.25 * size, 0.45 * size)
            line = (np.abs(yy - (y0 + a * np.sin(f * xx + ph))) < 1.0) & (xx >= x0) & (xx < x0 + length)
            line &= cell & ~nucleus & (mask == 0)
            img[line] -= 0.22
            mask[line] = 3
        img[pm] -= 0.28
        mask[pm] = 4
        # Golgi: 3-5 stacked parallel arcs in one place
        gy, gx = rng.uniform(0.25 * size, 0.75 * size, 2)
        r0 = rng.uniform(8, 12)
        dist = np.hypot(yy - gy, xx - gx)
        ang = np.arctan2(yy - gy, xx - gx)
        arc_span = np.abs(((ang - rng.uniform(-np.pi, np.pi) + np.pi) % (2 * np.pi)) - np.pi) < 0.7
        for j in range(rng.integers(3, 6)):
            arc = (np.abs(dist - (r0 + 3 * j)) < 0.8) & arc_span & cell & ~nucleus
            img[arc] -= 0.24
            mask[arc] = 5
        img = gaussian_filter(img, 0.7) + noise * 0.1 * rng.normal(size=shape)
        images.append(img.astype(np.float32))
        masks.append(mask)
    return {"images": images, "masks": masks, "class_names": ORGANELLE_CLASSES}


def make_cryoem2d(n: int = 12, size: int = 96, radius: float = 5.0, particles: int = 8, snr: float = 1.5,
                  seed: int = 0) -> dict:
    """Low-SNR micrographs: particles (discs of ``radius`` with internal density) on vitreous ice with a
    linear thickness gradient, blurred by a CTF-like kernel (difference of Gaussians: contrast
    inverted at low frequencies, fringes at the particle edge) and white noise. ``snr`` is the particle
    contrast over the noise standard deviation. Mask: class 1 on discs of ``radius`` around each centre.
    """
    if n < 3:
        raise ValueError(f"n must be at least 3, got {n}")
    if radius < 2 or radius * 4 > size:
        raise ValueError(f"radius must be in [2, size/4], got {radius}")
    rng = np.random.default_rng(seed)
    shape = (size, size)
    yy, xx = np.mgrid[:size, :size]
    images, masks, centres = [], [], []
    for _ in range(n):
        pts: list[tuple[float, float]] = []
        for _try in range(particles * 30):
            if len(pts) >= particles:
                break
            p = rng.uniform(radius + 2, size - radius - 2, 2)
            if all(np.hypot(*(p - q)) > 2.2 * radius for q in pts):
                pts.append((float(p[0]), float(p[1])))
        density = np.zeros(shape)
        mask = np.zeros(shape, np.uint8)
        for cy, cx in pts:
            d = np.hypot(yy - cy, xx - cx)
            blob = np.clip(1 - (d / radius) ** 2, 0, None) ** 0.5  # projection of a sphere
            lobe = np.exp(-((yy - cy - radius / 3) ** 2 + (xx - cx) ** 2) / (radius / 2) ** 2)  # asymmetry
            density += blob + 0.5 * lobe * (d < radius)
            mask[d <= radius] = 1
        ctf = gaussian_filter(density, 0.8) - 0.6 * gaussian_filter(density, 2.5)
        ice = np.linspace(0, 1, size)[None, :] * rng.uniform(0.5, 1.5) + rng.uniform(-0.5, 0.5)
        img = -ctf / max(ctf.max(), 1e-8) * snr + 0.3 * ice + rng.normal(size=shape)
        images.append(img.astype(np.float32))
        masks.append(mask)
        centres.append(np.asarray(pts, dtype=np.float32).reshape(-1, 2))
    return {"images": images, "masks": masks, "centres": centres, "class_names": ["background", "particle"]}


def stardist_data_folder() -> Path:
    """The ``data/images`` folder of the installed stardist package, found without importing it."""
    spec = importlib.util.find_spec("stardist")
    if spec is None or not spec.submodule_search_locations:
        raise BakeoffError("builtin:nuclei2d needs the stardist package (its wheel ships the image); "
                           "install it with: pip install 'bakeoff[nuclei]'")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "images"


def load_nuclei2d(tile: int = 128) -> dict:
    """The stardist 2D nuclei image and mask (instances -> nucleus/background), cut into ``tile`` x
    ``tile`` tiles. Split by position: the top half of the image trains, the third quarter validates,
    the bottom quarter tests, so no tile borders another part's tile except along one edge."""
    import tifffile

    folder = stardist_data_folder()
    img = tifffile.imread(folder / "img2d.tif").astype(np.float32)
    inst = tifffile.imread(folder / "mask2d.tif")
    H, W = img.shape
    if tile < 32 or H % tile or W % tile:
        raise ValueError(f"tile must be >= 32 and divide the image size {img.shape}, got {tile}")
    images, masks, ids, parts = [], [], [], []
    for r in range(H // tile):
        for c in range(W // tile):
            sl = (slice(r * tile, (r + 1) * tile), slice(c * tile, (c + 1) * tile))
            images.append(img[sl])
            masks.append((inst[sl] > 0).astype(np.uint8))
            ids.append(f"r{r}c{c}")
            y_frac = (r + 0.5) * tile / H
            parts.append("train" if y_frac < 0.5 else "val" if y_frac < 0.75 else "test")
    return {"images": images, "masks": masks, "ids": ids, "parts": parts,
            "class_names": ["background", "nucleus"]}


SEG_BUILTINS = {"organelles2d": make_organelles2d, "cryoem2d": make_cryoem2d, "nuclei2d": load_nuclei2d}
