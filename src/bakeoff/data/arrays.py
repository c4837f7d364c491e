"""In-memory samples (``ArrayData``) and the one check every sample source goes through (``from_arrays``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bakeoff.data.cache import LazyImages
from bakeoff.errors import BakeoffError
from bakeoff.utils import stable_hash


@dataclass
class ArrayData:
    """In-memory samples: ``X`` (N, C, *spatial) float32, ``y`` (N,) int64 classes (float64 values for
    ``targets="values"``), ``ids`` (N,) str."""

    X: np.ndarray
    y: np.ndarray
    ids: np.ndarray
    groups: np.ndarray | None = None
    folds: np.ndarray | None = None  # predefined fold of each sample, for split kind "predefined"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def spatial_dims(self) -> int:
        return self.X.ndim - 2

    @property
    def in_channels(self) -> int:
        return int(self.X.shape[1])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.X.shape[2:])

    def fingerprint(self) -> str:
        """Hash of sample ids, labels and pixel content: equal fingerprints mean the same data. Image files
        (``LazyImages``) are known by every file's path, size and modification time and the decode settings,
        so that a study is planned without decoding a pixel."""
        pixels = self.X.fingerprint() if isinstance(self.X, LazyImages) else _array_digest(self.X)
        return stable_hash([stable_hash(self.ids.tolist()), stable_hash(self.y.tolist()), pixels])

    @property
    def lazy(self) -> bool:
        """Whether the pixels are image files decoded on demand (into the study's cache)."""
        return isinstance(self.X, LazyImages)


def _array_digest(x: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()[:16]


def from_arrays(
    X: Any,
    y: Any,
    *,
    ids: Any = None,
    groups: Any = None,
    folds: Any = None,
    spatial_dims: int | None = None,
    num_classes: int | None = 2,
    name: str = "arrays",
    targets: str = "classes",
) -> ArrayData:
    """Check and standardise arrays to (N, C, *spatial) float32 with labels 0..K-1 (``targets="values"``:
    one finite number per sample, kept as float64, for regression).

    Without ``spatial_dims``: (N, H, W) is 2D, (N, D, H, W) is 3D single-channel, (N, C, D, H, W) 3D.
    """
    lazy = isinstance(X, LazyImages)  # image files: shape from their headers, pixels checked when decoded
    X = X if lazy else np.asarray(X)
    y = np.asarray(y)
    if X.ndim < 3:
        raise BakeoffError(f"{name}: X has shape {X.shape}; expected (N, H, W), (N, D, H, W) or (N, C, D, H, W)")
    if y.ndim != 1:
        raise BakeoffError(f"{name}: y has shape {y.shape}; expected one label per sample, shape (N,)")
    if len(X) != len(y):
        raise BakeoffError(f"{name}: X has {len(X)} samples but y has {len(y)}; expected the same length")
    if len(X) == 0:
        raise BakeoffError(f"{name}: X and y hold no samples; expected at least one sample per class and split")
    if spatial_dims is None:  # (samples read on demand come with their channel axis)
        spatial_dims = X.ndim - 2 if lazy else 2 if X.ndim == 3 else 3
    if X.ndim == spatial_dims + 1 and not lazy:
        X = X[:, None]
    if X.ndim != spatial_dims + 2:
        raise BakeoffError(
            f"{name}: X has shape {X.shape}; for {spatial_dims}D data expected (N, *spatial) or (N, C, *spatial) "
            f"with {spatial_dims} spatial dimensions"
        )
    if not np.issubdtype(X.dtype, np.number):
        raise BakeoffError(f"{name}: X has dtype {X.dtype}; expected numbers")
    X = X if lazy else X.astype(np.float32, copy=False)
    bad = None if lazy else ~np.isfinite(X)
    if bad is not None and bad.any():
        first = np.unique(np.nonzero(bad)[0])[:5].tolist()
        raise BakeoffError(f"{name}: X holds NaN or inf in {int(bad.any(axis=tuple(range(1, X.ndim))).sum())} "
                           f"samples (first indices {first}); expected finite values")
    y = _values(y, name) if targets == "values" else _class_labels(y, num_classes, name)
    ids = _unique_ids(ids, len(y), name)
    if groups is not None:
        groups = np.asarray(groups)
        if len(groups) != len(y):
            raise BakeoffError(f"{name}: groups has {len(groups)} entries but y has {len(y)}; expected the same length")
    if folds is not None:
        folds = np.asarray(folds)
        if len(folds) != len(y):
            raise BakeoffError(f"{name}: folds has {len(folds)} entries but y has {len(y)}; expected the same length")
    return ArrayData(X=X, y=y, ids=ids, groups=groups, folds=folds)


def _class_labels(y: np.ndarray, num_classes: int | None, name: str) -> np.ndarray:
    """Whole-number labels as int64, within 0..num_classes-1 when it is known."""
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_)
            or (np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y)))):
        if np.issubdtype(y.dtype, np.number):
            odd = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))
            raise BakeoffError(f"{name}: y of sample {odd[0]} is {y[odd[0]]:g} ({len(odd)} sample(s) not whole numbers"
                               f", first indices {odd[:5].tolist()}); expected integer class labels 0..K-1: fix or "
                               f"remove those samples")
        raise BakeoffError(f"{name}: y has dtype {y.dtype}; expected integer class labels")
    y = y.astype(np.int64)
    if num_classes is not None:
        outside = sorted(set(np.unique(y).tolist()) - set(range(num_classes)))
        if outside:
            want = "{0, 1}" if num_classes == 2 else f"0..{num_classes - 1}"
            first = int(np.flatnonzero(~np.isin(y, np.arange(num_classes)))[0])
            raise BakeoffError(f"{name}: labels {outside[:5]} are outside {want} (first: sample {first}); expected "
                               f"labels in {want}")
    return y


def _unique_ids(ids: Any, n: int, name: str) -> np.ndarray:
    """One distinct string id per sample (000000, 000001, ... when none are given)."""
    ids = np.asarray([f"{i:06d}" for i in range(n)] if ids is None else ids).astype(str)
    if len(ids) != n:
        raise BakeoffError(f"{name}: {len(ids)} ids for {n} samples; expected one id per sample")
    if len(set(ids.tolist())) != len(ids):
        seen: dict[str, int] = {}
        dups = [(i, v) for i, v in enumerate(ids.tolist()) if seen.setdefault(v, i) != i]
        i, v = dups[0]
        raise BakeoffError(f"{name}: id {v!r} appears more than once (samples {seen[v]} and {i}; {len(dups)} "
                           f"duplicate(s)); expected unique ids: remove the repeated rows or give them distinct ids")
    return ids


def _values(y: np.ndarray, name: str) -> np.ndarray:
    """One finite number per sample (regression targets), as float64."""
    if not (np.issubdtype(y.dtype, np.number) or np.issubdtype(y.dtype, np.bool_)):
        raise BakeoffError(f"{name}: y has dtype {y.dtype}; expected one number per sample (the target value)")
    y = y.astype(np.float64)
    odd = np.flatnonzero(~np.isfinite(y))
    if len(odd):
        raise BakeoffError(f"{name}: y of sample {odd[0]} is {y[odd[0]]:g} ({len(odd)} sample(s), first indices "
                           f"{odd[:5].tolist()}); expected a finite target value for every sample: fix or remove them")
    return y
