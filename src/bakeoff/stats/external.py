"""``bakeoff compare``: the verdict machinery for predictions made elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bakeoff.errors import BakeoffError
from bakeoff.stats.paired import PairedRuns, paired_runs

SCORE_KEYS = ("probs", "scores", "test_probs")
LABEL_KEYS = ("y", "labels", "test_y")
ID_KEYS = ("ids", "test_ids")


def _pick(arrays: dict[str, np.ndarray], keys: tuple[str, ...]) -> np.ndarray | None:
    return next((np.asarray(arrays[k]) for k in keys if k in arrays), None)


def read_scores(path: Path) -> dict[str, np.ndarray | None]:
    """Per-sample scores from an .npz (a bakeoff predictions.npz, or arrays probs/scores [, y] [, ids])
    or a .csv (columns score [, label] [, id])."""
    if not path.is_file():
        raise BakeoffError(f"{path}: file not found; expected an .npz or .csv of per-sample scores")
    if path.suffix == ".csv":
        df = pd.read_csv(path)
        if "score" not in df:
            raise BakeoffError(f"{path}: no 'score' column; expected columns score, and optionally label, id "
                               f"(found {list(df.columns)})")
        arrays = {"probs": df["score"].to_numpy(float)}
        if "label" in df:
            arrays["y"] = df["label"].to_numpy()
        if "id" in df:
            arrays["ids"] = df["id"].astype(str).to_numpy()
    else:
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
            raise BakeoffError(f"{path}: cannot read as .npz or .csv ({' '.join(str(exc).split())[:200]}); expected an "
                               f".npz of numeric arrays (probs/scores, y, ids) or a CSV with columns id, score, "
                               f"label") from None
    scores = _pick(arrays, SCORE_KEYS)
    if scores is None or scores.ndim != 1:
        raise BakeoffError(f"{path}: expected a 1-D array named one of {SCORE_KEYS} (binary scores), "
                           f"found {sorted(arrays)}")
    scores = scores.astype(float)
    bad = np.flatnonzero(~np.isfinite(scores))
    if len(bad):
        raise BakeoffError(f"{path}: score of sample {bad[0]} is {scores[bad[0]]} ({len(bad)} non-finite score(s)); "
                           f"expected a probability in [0, 1] for every sample")
    outside = np.flatnonzero((scores < 0) | (scores > 1))
    if len(outside):
        raise BakeoffError(f"{path}: score of sample {outside[0]} is {scores[outside[0]]:g} ({len(outside)} outside "
                           f"[0, 1]); expected probabilities, not logits: apply a sigmoid first")
    ids = _pick(arrays, ID_KEYS)
    return {"probs": scores, "y": _pick(arrays, LABEL_KEYS),
            "ids": None if ids is None else ids.astype(str)}


def _binary_labels(y: np.ndarray, path: Path) -> np.ndarray:
    """A file's labels as 0/1 integers; other values (``pos``/``neg``, 1/2) refused naming the file."""
    values = sorted({str(v) for v in np.unique(y.astype(str))})
    if not set(values) <= {"0", "1", "0.0", "1.0", "True", "False"}:
        raise BakeoffError(f"{path}: labels {values[:5]} are not 0/1; expected 0 (negative) and 1 (positive) for "
                           f"every sample: recode them (e.g. pos -> 1, neg -> 0)")
    return np.isin(y.astype(str), ["1", "1.0", "True"]).astype(int)


def paired_from_files(path_a: Path, path_b: Path, labels: Path | None, task: Any, metric: str = "auroc",
                      threshold: float = 0.5) -> PairedRuns:
    a, b = read_scores(path_a), read_scores(path_b)
    if a["ids"] is not None and b["ids"] is not None:
        for path, arr in ((path_a, a), (path_b, b)):
            ids, counts = np.unique(arr["ids"], return_counts=True)
            if (counts > 1).any():
                raise BakeoffError(f"{path}: sample id {str(ids[counts > 1][0])!r} occurs {counts[counts > 1][0]} times "
                                   f"({int((counts > 1).sum())} repeated id(s)); expected each sample once")
        only_a = sorted(set(a["ids"]) - set(b["ids"]))
        only_b = sorted(set(b["ids"]) - set(a["ids"]))
        if only_a or only_b:
            shown = "; ".join(f"{len(o)} only in {p} (first: {str(o[0])!r})" for o, p in ((only_a, path_a), (only_b, path_b))
                              if o)
            raise BakeoffError(f"{path_a} and {path_b} hold different sample ids ({shown}); expected the same "
                               f"samples in both: predict on the same test set")
        order_b = {k: i for i, k in enumerate(b["ids"])}
        perm = np.array([order_b[k] for k in a["ids"]])
        b = {k: (None if v is None else v[perm]) for k, v in b.items()}
    elif len(a["probs"]) != len(b["probs"]):
        raise BakeoffError(f"{path_a} has {len(a['probs'])} samples and {path_b} {len(b['probs'])}; "
                           f"expected the same samples in the same order (or ids to match them)")
    for path, arr in ((path_a, a), (path_b, b)):  # each file's own labels 0/1, before comparing them
        if arr["y"] is not None and labels is None:
            arr["y"] = _binary_labels(arr["y"], path)
    y = read_scores_labels(labels, len(a["probs"])) if labels is not None else a["y"]
    if y is None:
        y = b["y"]
    if y is None:
        raise BakeoffError("no labels: pass --labels FILE, or include y/labels (npz) or a label column (csv)")
    if b["y"] is not None and labels is None and not np.array_equal(a["y"] if a["y"] is not None else y, b["y"]):
        raise BakeoffError(f"{path_a} and {path_b} disagree on the labels of the same samples")
    y = np.asarray(y)
    if set(np.unique(y).tolist()) - {0, 1} or len(np.unique(y)) < 2:
        raise BakeoffError(f"labels must be 0/1 with both classes present, got values {np.unique(y)[:5].tolist()}")
    ids = np.arange(len(y))
    return paired_runs(task, metric, {(0, 0): {"ids": ids, "y": y.astype(int), "probs": a["probs"]}},
                       {(0, 0): {"ids": ids, "y": y.astype(int), "probs": b["probs"]}}, threshold)


def read_scores_labels(path: Path, n: int) -> np.ndarray:
    if not path.is_file():
        raise BakeoffError(f"--labels {path}: file not found")
    if path.suffix == ".npy":
        y = np.load(path, allow_pickle=False)
    elif path.suffix == ".csv":
        df = pd.read_csv(path)
        if "label" not in df:
            raise BakeoffError(f"--labels {path}: no 'label' column (found {list(df.columns)})")
        y = df["label"].to_numpy()
    else:
        with np.load(path, allow_pickle=False) as f:
            y = _pick({k: f[k] for k in f.files}, LABEL_KEYS)
        if y is None:
            raise BakeoffError(f"--labels {path}: no array named one of {LABEL_KEYS}")
    if len(y) != n:
        raise BakeoffError(f"--labels {path}: {len(y)} labels for {n} samples; expected one per sample")
    return y
