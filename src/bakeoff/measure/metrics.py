"""Metrics computed only from what a run saved (``predictions.npz``), so any report can be recomputed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.errors import BakeoffError

Task = Any  # a bakeoff.tasks.Task, passed in: measure sits below tasks and never imports them

PARTS = ("val", "test")
PREDICTIONS_NAME = "predictions.npz"


DENSE_KEYS = ("y", "pred", "prob", "centres", "image")  # per image; "prob": picking; "image": first val images


def load_predictions(path: str | Path) -> dict[str, dict[str, Any]]:
    """``{part: {"ids", "y", "probs"}}`` from a run's predictions.npz; for dense tasks ``{part: {"ids",
    "y", "pred", "prob", "centres"}}`` with one array per image in each list."""
    with np.load(path, allow_pickle=False) as f:
        if "dense" in f.files:
            out: dict[str, dict[str, Any]] = {}
            for part in PARTS:
                if f"{part}_ids" not in f.files:
                    continue
                n = len(f[f"{part}_ids"])
                d: dict[str, Any] = {"ids": f[f"{part}_ids"], "class_names": [str(c) for c in f["class_names"]],
                                     "spacing": tuple(float(v) for v in f["spacing"])}
                for k in DENSE_KEYS:
                    d[k] = [f[f"{part}_{k}_{j}"] if f"{part}_{k}_{j}" in f.files else None for j in range(n)]
                out[part] = d
            return out
        return {part: {k: f[f"{part}_{k}"] for k in ("ids", "y", "probs")} for part in PARTS
                if f"{part}_y" in f.files}


def predictions_arrays(preds: dict[str, dict[str, Any]]) -> dict[str, np.ndarray]:
    if "pred" not in next(iter(preds.values())):
        return {f"{part}_{k}": v for part, d in preds.items() for k, v in d.items()}
    first = next(iter(preds.values()))
    out = {"dense": np.array(1), "class_names": np.asarray(first["class_names"]),
           "spacing": np.asarray(first["spacing"], dtype=np.float64)}
    for part, d in preds.items():
        out[f"{part}_ids"] = np.asarray(d["ids"])
        for k in DENSE_KEYS:
            for j, a in enumerate(d.get(k) or []):
                if a is not None:
                    out[f"{part}_{k}_{j}"] = np.asarray(a)
    return out


SCORES_FILE = "scores.npz"  # a run's scores (dense tasks' per-image tables, metrics), kept so a report reads them


def _duplicate_of(preds: dict[str, dict[str, Any]], part: str) -> str | None:
    """"val" when the test part holds exactly the validation predictions (the same images doubling as
    the test set), so they are scored once."""
    if part != "test" or "val" not in preds:
        return None
    a, b = preds["val"], preds["test"]
    if not np.array_equal(a["ids"], b["ids"]):
        return None
    for k in ("y", "probs", "pred", "prob"):
        x, y = a.get(k), b.get(k)
        if x is None and y is None:
            continue
        if x is None or y is None or len(x) != len(y):
            return None
        pairs = zip(x, y) if isinstance(x, list) else [(x, y)]
        if not all((u is None and v is None) or (u is not None and v is not None and np.array_equal(u, v))
                   for u, v in pairs):
            return None
    return "val"


def _score_key(task: Task, source: Path) -> str | None:
    """What a run's kept scores depend on: the task's scoring settings (the metrics it reports, for tasks
    without settings of their own) and the predictions file itself (None: no predictions file)."""
    settings = task.scoring_settings()
    if settings is None:
        settings = {"metrics": list(task.metric_names)}
    if not source.exists():
        return None
    st = source.stat()
    key = {"task": task.name, "settings": settings, "predictions": [st.st_size, st.st_mtime_ns]}
    code = {n: src for n in task.metric_names if (src := getattr(_metric_or_none(task, n), "source", None))}
    if code:  # a user metric whose code changed since the scores were kept: computed again
        key["code"] = code
    return json.dumps(key, sort_keys=True, default=list)


def _metric_or_none(task: Task, name: str) -> Any:
    try:
        return task.metric(name)
    except BakeoffError:  # a name the task does not resolve has no code of its own to key on
        return None


Scored = dict[str, tuple[dict[str, Any], np.ndarray]]


def load_scores(path: Path, key: str, threshold: float | None = None) -> tuple[Scored, dict[str, Any]]:
    """The per-image tables and confusion matrices saved with ``save_scores`` under the same key, and what
    was taken at ``threshold`` ({"parts": metrics per part, "val_chance": {metric: note}}); empty when
    absent or stale."""
    if not path.is_file():
        return {}, {}
    with np.load(path, allow_pickle=False) as f:
        index = json.loads(str(f["index"]))
        if index.get("key") != key:
            return {}, {}
        scored = {part: ({m: (f[num], f[den]) for m, (num, den) in entry["tables"].items()}, f[entry["cm"]])
                  for part, entry in index["parts"].items()}
    kept = index.get("metrics") or {}
    return scored, (kept if kept.get("threshold") == threshold else {})


def save_scores(path: Path, key: str, scored: Scored, kept: dict[str, Any] | None = None) -> None:
    """``kept``: what ``load_scores`` returns beside the tables (with its "threshold")."""
    from bakeoff.utils import save_npz

    arrays: dict[str, np.ndarray] = {}
    parts: dict[str, Any] = {}
    for part, (tables, cm) in scored.items():
        entry: dict[str, Any] = {"cm": f"a{len(arrays)}", "tables": {}}
        arrays[entry["cm"]] = np.asarray(cm)
        for m, (num, den) in tables.items():
            names = (f"a{len(arrays)}", f"a{len(arrays) + 1}")
            arrays[names[0]], arrays[names[1]] = np.asarray(num), np.asarray(den)
            entry["tables"][m] = names
        parts[part] = entry
    index = {"key": key, "parts": parts, "metrics": kept}
    save_npz(path, index=np.asarray(json.dumps(index)), **arrays)


ECE_BINS = 10


def calibration_error(y: np.ndarray, probs: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error from torchmetrics: binary (``probs`` = P(class 1)) or top-label
    multiclass, L1, ``n_bins`` equal-width bins."""
    import torch
    import torchmetrics.functional.classification as tmf

    p, t = torch.from_numpy(np.asarray(probs, dtype=np.float64)), torch.from_numpy(np.asarray(y)).long()
    if p.ndim == 1:
        return float(tmf.binary_calibration_error(p, t, n_bins=n_bins))
    return float(tmf.multiclass_calibration_error(p, t, num_classes=p.shape[1], n_bins=n_bins))


def evaluate_predictions(task: Task, preds: dict[str, dict[str, Any]], threshold: float,
                         keep_tables: dict[str, Any] | None = None, cache: Path | None = None,
                         chance_metric: str | None = None) -> dict[str, Any]:
    """Per part: every metric, the confusion matrix (rows: truth, columns: prediction; pixels for dense
    tasks) and the threshold; with ``chance_metric``, also ``val_chance``: the task's note on whether that
    validation metric is at chance (``Task.chance_note``; absent where the task cannot tell); for tasks
    whose probabilities are read as such (``calibration``), ``test_ece`` (``calibration_error``).

    With ``cache`` (a run's scores.npz) what was computed is kept there, keyed by the scoring settings and
    the predictions file: dense tasks' per-image tables (``keep_tables[part]`` receives them), every
    task's confusion matrices, and the metrics and chance notes at this threshold. A report of saved
    predictions then reads them instead of recomputing them, and needs neither torch nor torchmetrics. A
    test part identical to the validation part is scored once."""
    out: dict[str, Any] = {"threshold": threshold}
    key = _score_key(task, cache.parent / PREDICTIONS_NAME) if cache is not None else None
    scored, kept = load_scores(cache, key, threshold) if cache is not None and key is not None else ({}, {})
    known, notes = dict(kept.get("parts") or {}), dict(kept.get("val_chance") or {})
    fresh = False
    for part, d in preds.items():
        same = _duplicate_of(preds, part)
        if same is not None:
            out[part], cm = dict(out[same]), np.asarray(out[f"{same}_confusion"])
            scored[part] = scored[same]
        else:
            if part not in scored:
                scored[part] = task.score_part(d, threshold=threshold)
                fresh = True
            tables, cm = scored[part]
            if part not in known:
                known[part] = task.metrics_from(tables, d, threshold)
                fresh = True
            out[part] = dict(known[part])
        if keep_tables is not None and scored[part][0]:
            keep_tables.setdefault(part, {}).update(scored[part][0])
        out[f"{part}_confusion"] = np.asarray(cm).tolist()
        rows = np.asarray(cm, dtype=float).sum(1, keepdims=True)
        out[f"{part}_confusion_normalized"] = (np.asarray(cm) / np.where(rows > 0, rows, 1)).tolist()  # per true class
        out[f"{part}_n"] = int(len(d["y"]))
    if chance_metric is not None and "val" in preds:
        if notes.get(chance_metric) is None:  # not asked yet, or kept as "cannot tell" (by an older version,
            note = task.chance_note(preds["val"], chance_metric, threshold)  # perhaps: asking again is free)
            if chance_metric not in notes or note is not None:
                notes[chance_metric] = note
                fresh = True
        if notes[chance_metric] is not None:  # None: the task cannot tell
            out["val_chance"] = notes[chance_metric]
    ece = kept.get("test_ece")
    if getattr(task, "calibration", False) and "test" in preds and np.ndim(preds["test"].get("probs")) >= 1:
        if ece is None:
            ece = calibration_error(preds["test"]["y"], preds["test"]["probs"])
            fresh = True
        out["test_ece"] = ece
    if fresh and cache is not None and key is not None:
        save_scores(cache, key, scored, {"threshold": threshold, "parts": known, "val_chance": notes,
                                         "test_ece": ece})
    return out


def choose_threshold(y: np.ndarray, probs: np.ndarray, rule: str) -> float:
    """The validation threshold that maximises Youden's J (TPR - FPR) or F1 (scikit-learn's curves)."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    if rule == "youden":
        fpr, tpr, thr = roc_curve(y, probs)
        keep = np.isfinite(thr)
        return float(thr[keep][np.argmax((tpr - fpr)[keep])])
    if rule == "f1":
        prec, rec, thr = precision_recall_curve(y, probs)
        f1 = np.where(prec[:-1] + rec[:-1] > 0, 2 * prec[:-1] * rec[:-1] / np.maximum(prec[:-1] + rec[:-1], 1e-12), 0)
        return float(thr[np.argmax(f1)])
    raise ValueError(f"unknown threshold rule {rule!r}")
