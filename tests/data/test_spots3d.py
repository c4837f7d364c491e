from __future__ import annotations

import numpy as np
import pytest

from bakeoff.data.spots3d import SHAPE, make_spots3d


def test_deterministic_shapes_and_balance():
    a, b = make_spots3d(n=500, seed=3), make_spots3d(n=500, seed=3)
    np.testing.assert_array_equal(a["X"], b["X"])
    assert a["X"].shape == (500, *SHAPE) and a["X"].dtype == np.float32
    assert a["y"].mean() == pytest.approx(0.2, abs=0.01)
    assert not np.array_equal(a["X"], make_spots3d(n=500, seed=4)["X"])
    assert set(np.unique(a["kind"][a["y"] == 0])) == {"background", "noise_peak", "off_centre", "blob"}


def test_psf_is_anisotropic_and_centred():
    d = make_spots3d(n=3000, positive_fraction=0.5, snr=8.0, seed=0)
    pos = d["X"][d["y"] == 1].mean(0)
    bg = d["X"][d["kind"] == "background"].mean(0)
    signal = pos - bg
    zc, yc, xc = (s // 2 for s in SHAPE)
    assert np.unravel_index(signal.argmax(), signal.shape) == (zc, yc, xc)
    # half-maximum width along z exceeds that along x: the PSF is broader axially
    z_profile, x_profile = signal[:, yc, xc], signal[zc, yc, :]
    assert (z_profile > z_profile.max() / 2).sum() > (x_profile > x_profile.max() / 2).sum()


def test_noise_and_snr():
    low, high = make_spots3d(n=2000, snr=1.0, seed=0), make_spots3d(n=2000, snr=6.0, seed=0)

    def contrast(d):
        c = d["X"][:, 4, 5, 5] - d["X"][:, 0].mean(axis=(1, 2))
        return c[d["y"] == 1].mean() - c[d["kind"] == "background"].mean()

    assert contrast(high) > 3 * contrast(low) > 0
    bg = make_spots3d(n=200, seed=0)
    assert bg["X"].min() > 0  # camera offset keeps counts positive, as on a real sCMOS


def test_bad_parameters():
    with pytest.raises(ValueError, match="positive_fraction"):
        make_spots3d(n=100, positive_fraction=1.5)
