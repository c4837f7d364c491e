"""Data sources for classification and regression: built-in generators, ``npz:PATH`` files, image
folders and CSV manifests, registered in ``data.registry`` and all checked the same way (``from_arrays``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.data.arrays import ArrayData, from_arrays  # noqa: F401  (public here too)
from bakeoff.data.cache import LazyImages
from bakeoff.data.real_builtin import load_digits_binary, load_nuclei_patches
from bakeoff.data.registry import (  # noqa: F401  (the registry, public here too)
    SOURCES,
    SourceSpec,
    _no_params,
    call_builtin,
    find_source,
    first_sentence,
    generator_loader,
    register_source,
)
from bakeoff.data.spots3d import make_spots3d
from bakeoff.errors import BakeoffError

BUILTIN_SOURCES: dict[str, Callable[..., dict[str, np.ndarray]]] = {
    "spots3d": make_spots3d, "digits": load_digits_binary, "nuclei_patches": load_nuclei_patches}


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
