"""``builtin:spots3d``: synthetic 3D candidate-spot patches like those of MS2 transcription-spot detection.

Each patch is (z, y, x) = (9, 11, 11) photon counts. Positives hold one diffraction-limited spot at the
centre, imaged with an anisotropic Gaussian PSF (broader in z than in x/y). Negatives are the detector's
typical false candidates: pure nuclear background, shot-noise peaks, spots off the centre, and bright
out-of-focus blobs. Every patch sits on textured nuclear background and is recorded with Poisson shot
noise plus Gaussian read noise. The generator is a pure function of its arguments.
"""

from __future__ import annotations

import numpy as np

SHAPE = (9, 11, 11)
NEGATIVE_KINDS = ("background", "noise_peak", "off_centre", "blob")


def make_spots3d(
    n: int = 2000,
    positive_fraction: float = 0.2,
    snr: float = 3.0,
    shape: tuple[int, int, int] = SHAPE,
    seed: int = 0,
    embryos: int = 8,
) -> dict[str, np.ndarray]:
    """Synthetic 3D fluorescent spot patches (9 x 11 x 11), spot or no spot, grouped by embryo.

    Returns ``X`` (n, z, y, x) float32 counts, ``y`` (n,) in {0, 1}, ``groups`` (embryo id) and ``kind``.

    ``snr`` is the spot's peak amplitude over the standard deviation of the background noise.
    """
    if not 0 < positive_fraction < 1:
        raise ValueError(f"positive_fraction must be in (0, 1), got {positive_fraction}")
    if n < 10:
        raise ValueError(f"n must be at least 10, got {n}")
    rng = np.random.default_rng(seed)
    n_pos = int(round(n * positive_fraction))
    y = np.zeros(n, dtype=np.int64)
    y[:n_pos] = 1
    kind = np.array(["spot"] * n_pos + list(rng.choice(NEGATIVE_KINDS, size=n - n_pos, p=[0.4, 0.2, 0.25, 0.15])))
    groups = rng.integers(0, embryos, size=n)

    # Nuclear background: an embryo-dependent level, a smooth texture and an intensity gradient.
    level = rng.uniform(80, 160, size=n) * (1 + 0.1 * (groups / max(embryos - 1, 1)))
    from scipy.ndimage import gaussian_filter  # here: importing the data sources costs no scipy.ndimage

    texture = gaussian_filter(rng.normal(size=(n, *shape)), sigma=(0, 1.2, 2.0, 2.0))
    texture /= texture.std(axis=(1, 2, 3), keepdims=True) + 1e-12
    zz, yy, xx = np.meshgrid(*(np.arange(s, dtype=np.float64) - (s - 1) / 2 for s in shape), indexing="ij")
    grad = rng.normal(size=(n, 3, 1, 1, 1)) * 0.02
    background = level[:, None, None, None] * (
        1 + 0.15 * texture + grad[:, 0] * zz + grad[:, 1] * yy + grad[:, 2] * xx
    )
    noise_sd = np.sqrt(level)  # shot-noise dominated background
    amp = snr * noise_sd * rng.uniform(0.7, 1.5, size=n)

    # Object centres and widths per kind.
    centre = rng.uniform(-0.5, 0.5, size=(n, 3))
    sig = np.column_stack([rng.uniform(1.6, 2.2, n), rng.uniform(0.9, 1.2, n), rng.uniform(0.9, 1.2, n)])
    signal_amp = amp.copy()
    off = kind == "off_centre"
    radius = rng.uniform(3.0, 4.5, size=off.sum())
    angle = rng.uniform(0, 2 * np.pi, size=off.sum())
    centre[off, 1] = radius * np.sin(angle)
    centre[off, 2] = radius * np.cos(angle)
    blob = kind == "blob"
    sig[blob] = np.column_stack([rng.uniform(3.0, 5.0, blob.sum()), *(rng.uniform(2.5, 4.0, (2, blob.sum())))])
    signal_amp[blob] *= rng.uniform(0.4, 0.9, blob.sum())
    peak = kind == "noise_peak"  # a single-plane, sub-PSF peak: hot pixels and shot-noise clusters
    sig[peak] = np.column_stack([np.full(peak.sum(), 0.45), *(rng.uniform(0.4, 0.6, (2, peak.sum())))])
    signal_amp[peak] *= rng.uniform(1.0, 2.0, peak.sum())
    signal_amp[kind == "background"] = 0.0

    d2 = sum(
        ((g[None] - centre[:, i, None, None, None]) / sig[:, i, None, None, None]) ** 2
        for i, g in enumerate((zz, yy, xx))
    )
    expected = background + signal_amp[:, None, None, None] * np.exp(-0.5 * d2)
    counts = rng.poisson(np.clip(expected, 0, None)).astype(np.float64)
    counts += rng.normal(0, 2.0, size=counts.shape) + 100.0  # camera read noise and offset

    order = rng.permutation(n)
    return {
        "X": counts[order].astype(np.float32),
        "y": y[order],
        "groups": groups[order],
        "kind": kind[order],
    }
