"""Train / val / test splits (holdout or k-fold; stratified; group-aware) with fingerprints."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

from bakeoff.config import SplitConfig
from bakeoff.data.cache import LazyImages
from bakeoff.data.sources import ArrayData
from bakeoff.errors import BakeoffError
from bakeoff.utils import stable_hash

PARTS = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    fold: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def indices(self, part: str) -> np.ndarray:
        return getattr(self, part)

    def fingerprints(self, ids: np.ndarray) -> dict[str, str]:
        """One hash of the sample ids per part: equal fingerprints mean identical partitions."""
        return {part: stable_hash(sorted(ids[self.indices(part)].tolist())) for part in PARTS}


def _splitter(n_splits: int, stratify: bool, grouped: bool, seed: int):
    if grouped:
        return StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed) if stratify else GroupKFold(n_splits)
    return (StratifiedKFold if stratify else KFold)(n_splits, shuffle=True, random_state=seed)


def _carve(idx: np.ndarray, fraction: float, data: ArrayData, cfg: SplitConfig, grouped: bool, salt: int):
    """Split ``idx`` into (rest, held) with ``fraction`` of it held out. A fraction of 1/k is the first fold of
    a k-fold split (as it always was: a study's splits do not change); any other fraction is held out exactly
    by scikit-learn's shuffle splits, whole groups when ``grouped`` (a share of the groups). Stratified and
    grouped at once has only the k-fold form (``StratifiedGroupKFold``): k = round(1 / fraction) there,
    and the parts' real sizes are in every run.json and the methods paragraph."""
    k = 1 / fraction
    n_splits = max(2, int(round(k)))
    groups = data.groups[idx] if grouped else None
    exact = abs(k - round(k)) < 1e-9 or (grouped and cfg.stratify)
    try:
        if exact:
            splitter = _splitter(n_splits, cfg.stratify, grouped, cfg.seed + salt)
        else:
            from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit, StratifiedShuffleSplit

            kind = GroupShuffleSplit if grouped else StratifiedShuffleSplit if cfg.stratify else ShuffleSplit
            size = fraction if grouped else max(1, int(round(fraction * len(idx))))  # a count: 0.2 / 0.7 of 140
            splitter = kind(n_splits=1, test_size=size, random_state=cfg.seed + salt)  # is 40, not ceil(40.000001)
        rest, held = next(iter(splitter.split(np.zeros(len(idx)), data.y[idx], groups)))
    except ValueError as exc:
        smallest = int(np.bincount(data.y[idx]).min()) if len(idx) else 0
        need = n_splits if exact else 2
        raise BakeoffError(f"data.split: cannot hold out {fraction:.0%} of {len(idx)} samples (scikit-learn: {exc}); "
                           f"expected at least {need} samples of every class (the smallest has {smallest}): "
                           f"use more data or a larger fraction") from None
    return idx[rest], idx[held]


def make_splits(data: ArrayData, cfg: SplitConfig, by_class: bool = True) -> list[Split]:
    """All splits of the study: one for holdout, ``cfg.folds`` for k-fold. Dense data (one sample per
    image) split by image, unstratified, or by the data's own train/val/test folders when they have them.
    ``by_class`` False (targets that are not classes, e.g. regression): unstratified, no per-class checks."""
    if getattr(data, "dense", False):
        return _dense_splits(data, cfg)
    if not by_class:
        if len(data.ids) < 3:
            raise BakeoffError(f"data: {len(data.ids)} samples; expected at least 3 (train, val and test)")
        return _partition(data, cfg.model_copy(update={"stratify": False}))
    if len(np.unique(data.y)) < 2:
        raise BakeoffError(f"data: every sample has label {data.y[0] if len(data.y) else None}; "
                           f"expected at least two classes")
    splits = _partition(data, cfg)
    classes = np.unique(data.y)
    for s in splits:
        for part in PARTS:
            present = np.unique(data.y[s.indices(part)])
            if len(present) < len(classes):
                missing = sorted(set(classes.tolist()) - set(present.tolist()))
                raise BakeoffError(
                    f"data.split: the {part} part of fold {s.fold} has no samples of class(es) {missing} "
                    f"({len(s.indices(part))} samples); expected every class in every part: use more data, "
                    f"fewer folds or larger fractions"
                )
    if cfg.kind in ("column", "kfold_column") and all(np.array_equal(s.test, s.val) for s in splits):
        import warnings

        warnings.warn("data: no rows with split == 'test'; each validation fold is also scored as the test set, "
                      "so test scores are optimistic (the fold also selected the checkpoint)", stacklevel=2)
    return splits


def _dense_splits(data, cfg: SplitConfig) -> list[Split]:
    if data.parts is not None:
        idx = {p: np.flatnonzero(data.parts == p) for p in PARTS}
        if len(idx["test"]) == 0:
            import warnings

            warnings.warn("data: no test images (no test/ folder); the validation images are also the test "
                          "images, so test scores are optimistic (they also selected the checkpoint)", stacklevel=2)
            idx["test"] = idx["val"]
        for p in ("train", "val"):
            if len(idx[p]) == 0:
                raise BakeoffError(f"data: no {p} images; expected at least one")
        return [Split(0, idx["train"], idx["val"], idx["test"])]
    n = len(data.ids)
    if n < 3:
        raise BakeoffError(f"data: {n} images; expected at least 3 (train, val and test)")
    return _partition(data, cfg.model_copy(update={"stratify": False}))


def _column_splits(data, cfg: SplitConfig) -> list[Split]:
    """Folds given by a manifest column: ``column`` (one validation fold) or ``kfold_column`` (each value)."""
    col = data.meta.get(f"column:{cfg.column}")
    if col is None:
        have = sorted(k.split(":", 1)[1] for k in data.meta if k.startswith("column:"))
        raise BakeoffError(f"data.split.column: {cfg.column!r} is not a column of the manifest; expected one of "
                           f"{have}")
    col = np.asarray(col).astype(str)
    part = data.meta.get("column:split")
    test = np.flatnonzero(np.char.lower(np.asarray(part).astype(str)) == "test") if part is not None else np.zeros(0, int)
    rest = np.setdiff1d(np.arange(len(col)), test)
    blank = [int(i) for i in rest if col[i].strip().lower() in ("", "nan", "na", "none")]
    odd = [int(i) for i in rest if cfg.kind == "kfold_column" and int(i) not in blank
           and not col[i].strip().lstrip("-").isdigit()]
    for rows, what in ((blank, "blank"), (odd, "not an integer")):
        if rows:  # a blank cell would otherwise become one more fold (rows as the manifest counts them)
            shown = ", ".join(f"row {i + 2} ({str(col[i])!r})" if what != "blank" else f"row {i + 2}" for i in rows[:5])
            raise BakeoffError(f"data.split: column {cfg.column!r} is {what} in {len(rows)} row(s) ({shown}"
                               f"{' ...' if len(rows) > 5 else ''}); expected a fold number in every row that is "
                               f"not in the test part: fill them in or remove those rows")
    values = sorted(set(col[rest].tolist()), key=lambda v: (len(v), v))
    if cfg.kind == "column":
        if str(cfg.val_fold) not in values:
            raise BakeoffError(f"data.split.val_fold: {cfg.val_fold!r} does not occur in column {cfg.column!r}; "
                               f"expected one of {values}")
        values = [str(cfg.val_fold)]
    elif len(values) < 2:
        raise BakeoffError(f"data.split: column {cfg.column!r} holds one fold value ({values}); expected two or more")
    splits = []
    for k, v in enumerate(values):
        val = rest[col[rest] == v]
        splits.append(Split(k, np.sort(rest[col[rest] != v]), np.sort(val), np.sort(test if len(test) else val)))
    return splits


def _partition(data, cfg: SplitConfig) -> list[Split]:
    if cfg.kind in ("column", "kfold_column"):
        return _column_splits(data, cfg)
    grouped = cfg.grouped and data.groups is not None
    all_idx = np.arange(len(data.y))
    if cfg.kind == "holdout":
        rest, test = _carve(all_idx, cfg.test_fraction, data, cfg, grouped, salt=0)
        train, val = _carve(rest, cfg.val_fraction / (1 - cfg.test_fraction), data, cfg, grouped, salt=1)
        splits = [Split(0, np.sort(train), np.sort(val), np.sort(test))]
    else:
        groups = data.groups if grouped else None
        if cfg.kind == "predefined":
            if data.folds is None:
                raise BakeoffError("data.split.kind: 'predefined' needs a folds array in the data (npz key "
                                   "'folds'); expected holdout or kfold otherwise")
            folds = [(np.flatnonzero(data.folds != v), np.flatnonzero(data.folds == v))
                     for v in np.unique(data.folds)]
            if len(folds) < 2:
                raise BakeoffError(f"data: the folds array holds one value ({data.folds[0]}); expected two or more")
        else:
            try:
                folds = list(_splitter(cfg.folds, cfg.stratify, grouped, cfg.seed).split(all_idx, data.y, groups))
            except ValueError as exc:
                limits = [f"{len(np.unique(groups))} groups"] if groups is not None else []
                if cfg.stratify:
                    limits.append(f"{np.unique(data.y, return_counts=True)[1].min()} samples in the rarest class")
                limit = " and ".join(limits) or f"{len(all_idx)} samples"
                raise BakeoffError(f"data.split: cannot make {cfg.folds} folds ({exc}); expected data.split.folds "
                                   f"no larger than the data allow ({limit}): lower it, or use kind: holdout"
                                   ) from None
        splits = []
        for k, (rest, test) in enumerate(folds):
            train, val = _carve(rest, cfg.val_fraction, data, cfg, grouped, salt=k + 1)
            splits.append(Split(k, np.sort(train), np.sort(val), np.sort(test)))
    return splits


def group_overlap(data: ArrayData, split: Split) -> set:
    """Groups that appear in more than one part (empty when the split is group-aware)."""
    if data.groups is None:
        return set()
    sets = [set(data.groups[split.indices(p)].tolist()) for p in PARTS]
    return (sets[0] & sets[1]) | (sets[0] & sets[2]) | (sets[1] & sets[2])


def exact_duplicates(data: ArrayData, split: Split) -> list[dict[str, str]]:
    """Samples whose pixel data are identical but that sit in different parts (train/val/test)."""
    import hashlib

    if getattr(data, "dense", False):
        digests = data.digests  # image + mask content, computed when the data were checked
    elif isinstance(data.X, LazyImages):  # image files: the digests the decode kept, per sample
        kept = data.X.store.digests()
        digests = [kept[i] for i in data.X.idx]
    else:
        X = np.ascontiguousarray(data.X)
        digests = [hashlib.blake2b(X[i].tobytes(), digest_size=16).hexdigest() for i in range(len(X))]
    part_of = {}
    for part in PARTS:
        for i in split.indices(part):
            part_of[int(i)] = part
    first: dict[str, int] = {}
    found = []
    for i in sorted(part_of):
        j = first.setdefault(digests[i], i)
        if j != i and part_of[j] != part_of[i]:
            found.append({"id": str(data.ids[i]), "part": part_of[i], "duplicate_of": str(data.ids[j]),
                          "duplicate_part": part_of[j], "fold": split.fold})
    return found
