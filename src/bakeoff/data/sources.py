"""Data sources: built-in generators, numpy arrays and ``npz:PATH`` files, all checked the same way."""

from __future__ import annotations

import difflib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.data.cache import LazyImages
from bakeoff.data.real_builtin import load_digits_binary, load_nuclei_patches
from bakeoff.data.spots3d import make_spots3d
from bakeoff.errors import BakeoffError
from bakeoff.utils import stable_hash

BUILTIN_SOURCES: dict[str, Callable[..., dict[str, np.ndarray]]] = {
    "spots3d": make_spots3d, "digits": load_digits_binary, "nuclei_patches": load_nuclei_patches}


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


def call_builtin(fn: Callable[..., dict[str, Any]], source: str, params: dict[str, Any],
                 needs: tuple[str, ...] = ()) -> dict[str, Any]:
    """Call a data generator (built in, or the user's ``package.module:callable``) with the study's
    ``data.params``, naming unknown or bad ones; the dict it returns must hold the arrays ``needs``."""
    from bakeoff.components import call_checked

    out = call_checked(fn, {}, params, f"data.params ({source})")
    if not isinstance(out, dict) or any(k not in out for k in needs):
        got = sorted(out) if isinstance(out, dict) else type(out).__name__
        raise BakeoffError(f"data.source {source}: returned {got}; expected a dict with arrays {list(needs)}")
    return out


@dataclass(frozen=True)
class SourceSpec:
    """A registered data source: ``data.source: NAME[:ARGUMENT]``, for sample tasks or dense ones."""

    name: str  # "npz", "csv", ... or "builtin:spots3d"
    dense: bool
    loader: Callable[..., Any]
    doc: str


SOURCES: dict[tuple[str, bool], SourceSpec] = {}


def register_source(name: str, *, dense: bool, doc: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: ``loader(argument, params, **data_settings)`` reads ``data.source: NAME:ARGUMENT``."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        SOURCES[(name, dense)] = SourceSpec(name, dense, fn, doc)
        return fn

    return wrap


def first_sentence(doc: str | None) -> str:
    """The first sentence of a docstring's first paragraph, on one line."""
    para = " ".join((doc or "").strip().split("\n\n")[0].split())
    return para.split(". ")[0].rstrip(".")


def find_source(source: str, dense: bool) -> tuple[SourceSpec, str]:
    """The registered source ``source`` names, and its argument; a clear error listing the others."""
    kind, _, rest = source.partition(":")
    spec = SOURCES.get((source, dense)) if kind == "builtin" else SOURCES.get((kind, dense))
    if spec is None and kind != "builtin" and not any(n == kind for n, _ in SOURCES):
        # not a registered kind: the user's own loader, package.module:callable
        from bakeoff.data.segdata import _register_dense_sources

        _register_dense_sources()
        if not any(n == kind for n, _ in SOURCES):
            fn = _user_loader(source)
            if dense:
                from bakeoff.data.segdata import dense_loader

                return SourceSpec(source, dense, dense_loader(fn), "user"), source
            return SourceSpec(source, dense, generator_loader(fn), "user"), source
    if spec is None:
        names = sorted(n if n.startswith("builtin:") else f"{n}:..." for n, d in SOURCES if d == dense)
        if kind == "builtin":
            raise BakeoffError(f"data.source: unknown built-in {'segmentation ' if dense else ''}data {rest!r}; "
                               f"expected one of {[n for n in names if n.startswith('builtin:')]}")
        if not dense:
            from bakeoff.data.segdata import _register_dense_sources

            _register_dense_sources()
        other = any(n == kind or n == source for n, d in SOURCES if d != dense)
        what = ("holds no masks" if dense else "holds images with masks (for semantic_segmentation or "
                "particle_picking)") if other else "is not a data source"
        raise BakeoffError(f"data.source: {source!r} {what}; expected one of {names}")
    return spec, rest


def _user_loader(source: str) -> Callable[..., Any]:
    """The callable ``package.module:callable`` names; a module that does not import may be a mistyped
    source kind, so the message lists the registered ones too."""
    from bakeoff.components import import_callable

    module = source.partition(":")[0]
    try:
        return import_callable(source, "data.source")
    except BakeoffError as exc:
        if importlib.util.find_spec(module.split(".")[0]) is not None:
            raise
        kinds = sorted({n.partition(":")[0] for n, _ in SOURCES})
        close = difflib.get_close_matches(module, kinds, n=1)
        raise BakeoffError(f"data.source: {source!r}: {module!r} is neither a data source"
                           + (f" (did you mean {close[0]!r}?)" if close else "")
                           + f" nor an importable module; expected one of {kinds} (bakeoff list sources) or "
                           f"your own loader as package.module:callable") from exc


def _no_params(source: str, params: dict[str, Any]) -> None:
    if params:
        raise BakeoffError(f"data.params: {source} takes no parameters, got {sorted(params)}")


def load_source(source: str, params: dict[str, Any] | None = None, *, spatial_dims: int | None = None,
                num_classes: int | None = 2, image_size: int | list[int] | None = None,
                channels: int | None = None, allow_outside_root: bool = False, targets: str = "classes") -> ArrayData:
    """Load a registered sample source (``bakeoff list sources``), e.g. ``builtin:spots3d`` (called with
    ``params``), ``npz:PATH``, ``csv:MANIFEST``, ``folder:ROOT``; ``targets``: "classes" (labels 0..K-1 or
    class names) or "values" (a number per sample: regression)."""
    spec, rest = find_source(source, dense=False)
    return spec.loader(rest, dict(params or {}), source=source, spatial_dims=spatial_dims, num_classes=num_classes,
                       image_size=image_size, channels=channels, allow_outside_root=allow_outside_root,
                       targets=targets)


def generator_loader(fn: Callable[..., dict[str, np.ndarray]]) -> Callable[..., ArrayData]:
    """A source from a generator returning ``{"X", "y"[, "groups", "ids", "folds", "class_names"]}``."""

    def load(rest: str, params: dict[str, Any], *, source: str, spatial_dims: int | None,
             num_classes: int | None, targets: str = "classes", **_: Any) -> ArrayData:
        arrays = call_builtin(fn, source, params, needs=("X", "y"))
        data = from_arrays(arrays["X"], arrays["y"], groups=arrays.get("groups"), ids=arrays.get("ids"),
                           folds=arrays.get("folds"), spatial_dims=spatial_dims, num_classes=num_classes,
                           name=source, targets=targets)
        data.meta = {k: v for k, v in arrays.items() if k not in ("X", "y", "groups", "ids", "folds")}
        return data

    return load


for _name, _fn in BUILTIN_SOURCES.items():
    register_source(f"builtin:{_name}", dense=False, doc=first_sentence(_fn.__doc__))(generator_loader(_fn))


NPZ_IN_MEMORY_BYTES = 1 << 30  # an npz: X larger than this as float32 is read by sample (bakeoff.data.cache)


@register_source("npz", dense=False, doc="an .npz with arrays X (N, [C,] *spatial), y, optional groups, ids, folds")
def _npz(rest: str, params: dict[str, Any], *, source: str, spatial_dims: int | None, num_classes: int | None,
         targets: str = "classes", **_: Any) -> ArrayData:
    """Arrays up to ``NPZ_IN_MEMORY_BYTES`` (as float32) are read into memory; a larger ``X`` is read sample
    by sample (in place when stored uncompressed, else decoded once into the study's cache) and normalised
    per batch, like image files."""
    _no_params(source, params)
    path = Path(rest)
    if not path.is_file():
        raise BakeoffError(f"data.source: file {path} not found; expected an .npz with arrays X and y")
    lazy = _npz_lazy(path, spatial_dims)
    arrays: dict[str, Any] = {}
    try:
        with np.load(path, allow_pickle=False) as f:
            for k in f.files:
                if not (k == "X" and lazy is not None):
                    arrays[k] = f[k]
    except ValueError as exc:
        if "allow_pickle" not in str(exc):
            raise BakeoffError(f"data.source: cannot read {path} as .npz ({exc}); expected a complete .npz written "
                               f"by np.savez") from None
        key = next(k for k in f.files if k not in arrays)  # the array np.load stopped at
        raise BakeoffError(f"{path}: array {key!r} holds Python objects (dtype object, e.g. lists of different "
                           f"lengths or mixed types); expected numeric arrays: save it with "
                           f"np.asarray({key}, dtype=np.float32) (labels: an integer dtype)") from None
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise BakeoffError(f"data.source: cannot read {path} as .npz ({exc}); expected a complete .npz written by "
                           f"np.savez") from None
    if lazy is not None:
        arrays["X"] = lazy
    missing = [k for k in ("X", "y") if k not in arrays]
    if missing:
        raise BakeoffError(f"{path}: missing array(s) {missing}; expected X, y and optionally groups, ids, folds "
                           f"(found {sorted(arrays)})")
    return from_arrays(arrays["X"], arrays["y"], ids=arrays.get("ids"), groups=arrays.get("groups"),
                       folds=arrays.get("folds"), spatial_dims=spatial_dims, num_classes=num_classes,
                       name=str(path), targets=targets)


def _npz_lazy(path: Path, spatial_dims: int | None) -> LazyImages | None:
    """``X`` of a large .npz as samples read on demand; None where it is read into memory as before (small,
    Fortran order, not numbers, not an array of samples, or no X: the loader then says what is wrong)."""
    from bakeoff.data.cache import ImageStore, NpzArray, npz_member

    try:
        shape, fortran, dtype, _ = npz_member(path, "X")
    except Exception:  # noqa: BLE001 - no X, or not a zip: the whole read below says so
        return None
    if fortran or dtype.kind not in "biuf" or len(shape) < 3 or int(np.prod(shape)) * 4 <= NPZ_IN_MEMORY_BYTES:
        return None
    return LazyImages(ImageStore(NpzArray(path, "X", spatial_dims, str(path))))


def _images(kind: str) -> Callable[..., ArrayData]:
    def load(rest: str, params: dict[str, Any], *, source: str, image_size: Any, channels: int | None,
             allow_outside_root: bool = False, targets: str = "classes", **_: Any) -> ArrayData:
        _no_params(source, params)
        from bakeoff.data.images import load_csv, load_folder

        size = None if image_size is None else (
            (image_size, image_size) if isinstance(image_size, int) else tuple(image_size))
        if kind == "csv":
            return load_csv(rest, channels=channels, size=size, allow_outside_root=allow_outside_root,
                            targets=targets)
        if targets != "classes":
            raise BakeoffError(f"data.source: {source}: a folder per class holds classes; expected a csv: manifest "
                               f"with a number per image in its label column for this task")
        return load_folder(rest, channels=channels, size=size)

    return load


register_source("csv", dense=False, doc="a manifest CSV of image paths and labels (optional fold, group, id)")(
    _images("csv"))
register_source("folder", dense=False, doc="ROOT/<class name>/*.png|tif|jpg")(_images("folder"))
