"""Instance segmentation scores from label images: objects matched one to one, counted per image.

A label image holds one integer id per object (0 background), in any integer dtype: ids above 255 are
kept as they are (never cast to a narrower type). Matching is StarDist's (``stardist.matching.matching``,
the reference the field uses; Schmidt et al. 2018): the intersection over union (IoU) of every true and
predicted object, and for each threshold t the Hungarian assignment that first maximises the number of
pairs with IoU >= t and then their IoU; a pair at or above t is a true positive (TP), an unmatched
prediction a false positive (FP), an unmatched true object a false negative (FN). Cellpose's
``metrics.average_precision`` matches the same way (the tests check both on the same images).

What an image contributes, per threshold: TP, FP, FN and the sum of the matched pairs' IoU; and the
number of true and predicted objects. Everything reported is a function of these counts, so a bootstrap
replicate of the test images reweights them (``image_scores`` then ``scores_from_counts``):

* **AP at t** is the "accuracy" TP / (TP + FP + FN) of StarDist, Cellpose and the 2018 Data Science Bowl
  (not the area under a precision-recall curve, which detection papers also call AP). ``mean_ap`` is its
  mean over the thresholds (0.50, 0.55, ..., 0.90 by default).
* **F1 at 0.5**: 2 TP / (2 TP + FP + FN); **panoptic quality** (Kirillov et al. 2019) at 0.5: the
  matched IoU sum / (TP + FP / 2 + FN / 2).
* **count error**: |predicted objects − true objects| per image, averaged.

Two ways to combine images, said in every report: **per image** (the score of each image, then their
mean: the Data Science Bowl and the NeurIPS 2022 cell challenge; an image with no object in the truth and
none predicted has no defined score and is left out, counted as ``n_undefined``) and **pooled** (the
counts summed over images, then the ratio: StarDist's ``matching_dataset``). The study's verdicts use the
per-image form, whole test images being its units.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(9))  # 0.50 ... 0.90
COUNT_FIELDS = ("tp", "fp", "fn", "iou_sum")


def check_labels(labels: np.ndarray, what: str) -> np.ndarray:
    """A label image as it is: integers (any width), non-negative; a clear error otherwise."""
    arr = np.asarray(labels)
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.mod(arr, 1) == 0):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{what}: an instance label image holds integer object ids, got {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{what}: object ids are 0 (background) or positive, got {int(arr.min())}")
    return arr


def match_counts(true: np.ndarray, pred: np.ndarray, thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
                 ) -> dict[str, Any]:
    """One image's counts: ``tp``, ``fp``, ``fn``, ``iou_sum`` (arrays over ``thresholds``) and the numbers
    of true and predicted objects, from StarDist's matching on the two label images."""
    from stardist.matching import matching

    true, pred = check_labels(true, "truth"), check_labels(pred, "prediction")
    if true.shape != pred.shape:
        raise ValueError(f"truth {true.shape} and prediction {pred.shape} differ in shape")
    results = matching(true, pred, thresh=list(thresholds))
    out = {k: np.zeros(len(thresholds)) for k in COUNT_FIELDS}
    for j, r in enumerate(results):
        out["tp"][j], out["fp"][j], out["fn"][j] = r.tp, r.fp, r.fn
        out["iou_sum"][j] = r.mean_matched_score * r.tp  # (StarDist's mean over its true positives)
    out["n_true"] = int(results[0].n_true)
    out["n_pred"] = int(results[0].n_pred)
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _scores(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, iou: np.ndarray, thresholds: tuple[float, ...]
            ) -> dict[str, np.ndarray]:
    """``ap@t`` per threshold, ``mean_ap``, and ``f1`` and ``panoptic_quality`` at 0.5 (the threshold
    nearest it), from counts (rows, thresholds); NaN where a row has no object at all."""
    ap = _ratio(tp, tp + fp + fn)
    at = int(np.argmin(np.abs(np.asarray(thresholds) - 0.5)))
    out = {f"ap@{t:.2f}": ap[:, j] for j, t in enumerate(thresholds)}
    out["mean_ap"] = ap.mean(axis=1)
    out["f1"] = _ratio(2 * tp[:, at], 2 * tp[:, at] + fp[:, at] + fn[:, at])
    out["panoptic_quality"] = _ratio(iou[:, at], tp[:, at] + fp[:, at] / 2 + fn[:, at] / 2)
    return out


def image_scores(counts: dict[str, np.ndarray], thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
                 ) -> dict[str, np.ndarray]:
    """Per-image scores from stacked counts (``tp``, ``fp``, ``fn``, ``iou_sum``: (images, thresholds);
    ``n_true``, ``n_pred``: (images,)): ``ap@t`` per threshold, ``mean_ap``, ``f1`` and ``panoptic_quality``
    at 0.5, ``count_error``. NaN where an image has no object in the truth and none predicted."""
    out = _scores(*(np.asarray(counts[k], float) for k in COUNT_FIELDS), thresholds)
    out["count_error"] = np.abs(np.asarray(counts["n_pred"], float) - np.asarray(counts["n_true"], float))
    return out


def pooled_scores(counts: dict[str, np.ndarray], weights: np.ndarray | None = None,
                  thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS) -> dict[str, np.ndarray]:
    """The pooled scores (counts summed over images, then the ratio) for each row of image ``weights``
    (B, images; None: every image once): ``ap@t``, ``mean_ap``, ``f1``, ``panoptic_quality``."""
    tp = np.asarray(counts["tp"], float)
    w = np.ones((1, tp.shape[0])) if weights is None else np.atleast_2d(np.asarray(weights, float))
    return _scores(*(w @ np.asarray(counts[k], float) for k in COUNT_FIELDS), thresholds)


def stack_counts(per_image: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """``match_counts`` of several images as arrays (images, thresholds) and (images,)."""
    out = {k: np.stack([c[k] for c in per_image]) for k in COUNT_FIELDS}
    out["n_true"] = np.asarray([c["n_true"] for c in per_image])
    out["n_pred"] = np.asarray([c["n_pred"] for c in per_image])
    return out
