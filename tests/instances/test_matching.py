"""Instance matching and scores (bakeoff.measure.instances) against the two references the field uses:
Cellpose's ``metrics.average_precision`` (TP, FP, FN and TP / (TP + FP + FN) per IoU threshold) and
StarDist's ``matching`` (F1, panoptic quality, accuracy), on the same label images: empty ones, one object
split in two, two merged into one, more than 255 objects (uint16 ids), shifted and random blobs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bakeoff.measure.instances import (
    DEFAULT_THRESHOLDS,
    check_labels,
    image_scores,
    match_counts,
    pooled_scores,
    stack_counts,
)

pytest.importorskip("stardist")
cellpose_metrics = pytest.importorskip("cellpose.metrics")


def _squares(n: int, size: int = 6, gap: int = 2, dtype=np.uint16) -> np.ndarray:
    side = int(np.ceil(np.sqrt(n)))
    img = np.zeros((side * (size + gap), side * (size + gap)), dtype)
    for k in range(n):
        r, c = divmod(k, side)
        img[r * (size + gap):r * (size + gap) + size, c * (size + gap):c * (size + gap) + size] = k + 1
    return img


def _blobs(seed: int, shape=(64, 64), n=12) -> np.ndarray:
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    img = np.zeros(shape, np.int32)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    for k in range(n):
        cy, cx, r = rng.uniform(0, shape[0]), rng.uniform(0, shape[1]), rng.uniform(3, 8)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2] = k + 1
    return ndimage.label(img > 0)[0] * (img > 0) if seed % 2 else img


def _cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    one = np.zeros((32, 32), np.uint16)
    one[4:20, 4:20] = 7
    split = one.copy()
    split[4:20, 12:20] = 9  # the object predicted as two halves
    two = np.zeros((32, 32), np.uint16)
    two[4:20, 4:12], two[4:20, 12:20] = 1, 2
    merged = np.where(two > 0, 5, 0).astype(np.uint16)  # two true objects predicted as one
    many = _squares(300)
    shifted = np.roll(many, 2, axis=1)
    many_missing = np.where(many % 7 == 0, 0, many)
    return {
        "both empty": (np.zeros((16, 16), np.uint16), np.zeros((16, 16), np.uint16)),
        "truth empty": (np.zeros_like(one), one),
        "prediction empty": (one, np.zeros_like(one)),
        "one object split in two": (one, split),
        "two merged into one": (two, merged),
        ">255 objects, shifted": (many, shifted.astype(np.uint32)),
        ">255 objects, some missed": (many, many_missing),
        "random blobs": (_blobs(1), _blobs(2)),
        "random blobs, same seed shifted": (_blobs(3), np.roll(_blobs(3), 1, axis=0)),
    }


@pytest.mark.parametrize("case", list(_cases()))
def test_counts_and_ap_agree_with_cellpose_and_stardist(case):
    from stardist.matching import matching

    true, pred = _cases()[case]
    counts = match_counts(true, pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ap, tp, fp, fn = cellpose_metrics.average_precision([true], [pred], threshold=list(DEFAULT_THRESHOLDS))
    np.testing.assert_array_equal(counts["tp"], tp[0])
    np.testing.assert_array_equal(counts["fp"], fp[0])
    np.testing.assert_array_equal(counts["fn"], fn[0])
    scores = image_scores(stack_counts([counts]))
    for j, t in enumerate(DEFAULT_THRESHOLDS):
        t_, f_, n_ = (float(v[0, j]) for v in (tp, fp, fn))  # (cellpose's counts are float32)
        expected = t_ / (t_ + f_ + n_) if t_ + f_ + n_ else np.nan
        np.testing.assert_allclose(scores[f"ap@{t:.2f}"][0], expected, rtol=0, atol=1e-9)  # (cellpose: float32)
        if np.isfinite(ap[0, j]):
            assert abs(scores[f"ap@{t:.2f}"][0] - ap[0, j]) < 1e-6
    ref = matching(true, pred, thresh=0.5)
    if ref.n_true + ref.n_pred:
        assert abs(scores["f1"][0] - ref.f1) < 1e-9
        assert abs(scores["panoptic_quality"][0] - ref.panoptic_quality) < 1e-9
        assert abs(scores["ap@0.50"][0] - ref.accuracy) < 1e-9
    else:  # nothing in either: undefined, not 0 (StarDist's safe division) or a warning (Cellpose)
        assert np.isnan(scores["f1"][0]) and np.isnan(scores["mean_ap"][0])
    assert scores["count_error"][0] == abs(ref.n_pred - ref.n_true)


def test_split_and_merge_are_errors_a_dice_would_not_see():
    cases = _cases()
    for name in ("one object split in two", "two merged into one"):
        s = image_scores(stack_counts([match_counts(*cases[name])]))
        assert s["ap@0.50"][0] <= 0.5 and s["mean_ap"][0] < 0.1 and s["count_error"][0] == 1, (name, s)
    assert match_counts(*cases[">255 objects, some missed"])["n_true"] == 300


def test_pooled_scores_sum_the_counts_as_stardists_matching_dataset():
    from stardist.matching import matching_dataset

    pairs = [_cases()[k] for k in ("one object split in two", "two merged into one", "random blobs",
                                   ">255 objects, shifted")]
    counts = stack_counts([match_counts(t, p) for t, p in pairs])
    pooled = pooled_scores(counts)
    for j, t in enumerate(DEFAULT_THRESHOLDS):
        ref = matching_dataset([t_ for t_, _ in pairs], [p for _, p in pairs], thresh=t, show_progress=False)
        assert abs(pooled[f"ap@{t:.2f}"][0] - ref.accuracy) < 1e-9
        if j == 0:
            assert abs(pooled["f1"][0] - ref.f1) < 1e-9
            assert abs(pooled["panoptic_quality"][0] - ref.panoptic_quality) < 1e-9
    # a bootstrap replicate is a reweighting of the images' counts
    w = np.array([[2.0, 0.0, 1.0, 1.0]])
    again = pooled_scores(stack_counts([match_counts(*pairs[i]) for i in (0, 0, 2, 3)]))
    np.testing.assert_allclose(pooled_scores(counts, w)["mean_ap"], again["mean_ap"], atol=1e-12)


def test_labels_are_never_narrowed_and_bad_ones_are_named():
    big = _squares(300).astype(np.uint32) * 1000  # ids up to 300,000
    assert match_counts(big, big)["tp"][0] == 300
    with pytest.raises(ValueError, match="integer object ids"):
        check_labels(np.full((4, 4), 0.5), "truth")
    with pytest.raises(ValueError, match="0 .background. or positive"):
        check_labels(np.full((4, 4), -1), "truth")
