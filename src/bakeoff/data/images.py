"""2D image files for classification: ``csv:MANIFEST`` (columns path, label and optional fold, group,
split) and ``folder:ROOT`` (ImageFolder layout ROOT/<class>/<image>).

PNG/JPEG/BMP are decoded with Pillow, TIFF with tifffile; each image is converted to the requested number
of channels (grayscale <-> RGB) and resized to ``image_size`` (Pillow, bilinear). Loading reads the
manifest and every file's header only; the pixels are decoded once per dataset and settings into the
study's cache in their stored dtype (``bakeoff.data.cache``) and normalised per batch.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from bakeoff.data.arrays import ArrayData, from_arrays
from bakeoff.data.cache import (
    IMAGE_SUFFIXES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageFiles,
    ImageStore,
    LazyImages,
    _as_float,
    decode,
    read_header,
)
from bakeoff.errors import BakeoffError

__all__ = ["IMAGE_SUFFIXES", "imagenet_normalize", "lazy_images", "load_csv", "load_folder", "read_image",
           "read_manifest"]



def read_image(path: Path, channels: int | None, size: tuple[int, int] | None) -> np.ndarray:
    """One image as a network sees it before normalisation: (C, H, W) float32 in [0, 1] for integer images
    (decoded as the cache stores it, then uint8 / 255 or uint16 / 65535)."""
    c, _hw, dtype = read_header(path)
    stored = dtype if dtype in (np.uint8, np.uint16) and not (channels == 1 and c == 3 and dtype != np.uint8) \
        else np.dtype(np.float32)
    return _as_float(decode(path, channels, size, stored))


def lazy_images(paths: list[Path], channels: int | None, size: tuple[int, int] | None, name: str) -> LazyImages:
    """The images of ``paths``, headers read (a non-uniform size or a broken header refused now), pixels
    decoded when first asked for (into the study's cache, see ``bakeoff.data.cache``)."""
    files = ImageFiles(paths, channels, size, name)
    files.layout()
    return LazyImages(ImageStore(files))


MISSING_LABELS = {"", "nan"}  # what a spreadsheet leaves in an empty cell; "none" can be a grade


def _labels(raw: list[str], where: str) -> tuple[np.ndarray, list[str]]:
    """Integer labels 0..K-1 as given, or strings mapped to 0..K-1 in sorted order (stated in the names).
    Surrounding spaces are not part of a label ("dog " is "dog"); an empty or NaN label is an error naming
    its row (row 2 is the first under the header)."""
    raw = [(v or "").strip() for v in raw]
    empty = [i for i, v in enumerate(raw) if v.lower() in MISSING_LABELS]
    if empty:
        raise BakeoffError(f"{where}: row {empty[0] + 2}: label is empty or NaN ({len(empty)} such row(s)); expected "
                           f"a class name or an integer 0..K-1 in every row: fill them in or remove those rows")
    try:
        ints = [int(v) for v in raw]
        if any(str(i) != v.strip() for i, v in zip(ints, raw)):
            raise ValueError
    except ValueError:
        whole = [i for i, v in enumerate(raw) if v.lstrip("-").isdigit()]
        odd = [i for i, v in enumerate(raw) if not v.lstrip("-").isdigit()]
        if len(whole) > len(odd):  # integer labels with a few that are not: a typo, not class names
            raise BakeoffError(f"{where}: row {odd[0] + 2}: label {raw[odd[0]]!r} is not an integer like the other "
                               f"labels ({len(odd)} such row(s)); expected integer labels 0..K-1 (or class names "
                               f"in every row): fix or remove those rows") from None
        names = sorted(set(raw))
        index = {n: i for i, n in enumerate(names)}
        return np.array([index[v] for v in raw], np.int64), names
    y = np.array(ints, np.int64)
    K = int(y.max()) + 1
    missing = sorted(set(range(K)) - set(y.tolist()))
    if y.min() < 0 or missing:
        raise BakeoffError(f"{where}: labels must be integers 0..K-1 (or class names); got values "
                           f"{sorted(set(y.tolist()))[:8]}{' with ' + str(missing[:5]) + ' absent' if missing else ''}")
    return y, [str(k) for k in range(K)]


def _numbers(raw: list[str], where: str) -> np.ndarray:
    """A number per row (regression targets); an empty, NaN or non-numeric cell is an error naming its row."""
    out = np.empty(len(raw))
    for i, v in enumerate((v or "").strip() for v in raw):
        try:
            out[i] = float(v)
        except ValueError:
            out[i] = np.nan
        if not np.isfinite(out[i]):
            raise BakeoffError(f"{where}: row {i + 2}: label {v!r} is not a finite number; expected the target "
                               f"value of every image in the label column: fix or remove that row")
    return out


def read_manifest(path: str, *, columns_needed: tuple[str, ...], path_columns: tuple[str, ...],
                  allow_outside_root: bool = False) -> tuple[Path, list[dict[str, str]], list[str], dict[str, list[Path]], list[str]]:
    """A CSV manifest read and checked: (manifest, rows, columns, the resolved files of each path column,
    one id per row: the first path column's file relative to the manifest's folder)."""
    manifest = Path(path)
    wanted = ",".join(columns_needed)
    if manifest.is_dir():
        raise BakeoffError(f"data.source: {manifest} is a folder; expected a CSV manifest file (csv:FOLDER/FILE.csv), "
                           f"or folder:{manifest} for one sub-folder per class")
    if not manifest.is_file():
        raise BakeoffError(f"data.source: manifest {manifest} not found; expected a CSV with columns {wanted}")
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as f:  # Excel's BOM is not part of "path"
            reader = csv.DictReader(f)
            rows = list(reader)
            columns = [c.strip() for c in reader.fieldnames or []]
    except UnicodeDecodeError as exc:
        raise BakeoffError(f"{manifest}: not UTF-8 text ({exc.reason} at byte {exc.start}); expected a CSV saved as "
                           f"UTF-8 (Excel: 'CSV UTF-8')") from None
    rows = [{(k or "").strip(): (v.strip() if isinstance(v, str) else v) for k, v in r.items()} for r in rows]
    missing = [c for c in columns_needed if c not in columns]
    if missing:
        raise BakeoffError(f"{manifest}: missing column(s) {missing}; expected {wanted} and optionally fold, "
                           f"group, split (found {columns})")
    if not rows:
        raise BakeoffError(f"{manifest}: no rows; expected one row per image")
    root = manifest.parent.resolve()
    files: dict[str, list[Path]] = {}
    for col in path_columns:
        paths = [(manifest.parent / r[col]).resolve() if not Path(r[col]).is_absolute() else Path(r[col]) for r in rows]
        if not allow_outside_root:
            outside = [(i, r[col]) for i, (r, p) in enumerate(zip(rows, paths)) if not p.resolve().is_relative_to(root)]
            if outside:
                i, shown = outside[0]
                raise BakeoffError(f"{manifest}: row {i + 2}: {col} {shown!r} lies outside the manifest's folder {root} "
                                   f"({len(outside)} such row(s)); expected paths under it, or set "
                                   f"data.allow_outside_root: true if you trust this manifest")
        folders = [(i, r[col]) for i, (r, p) in enumerate(zip(rows, paths)) if p.is_dir()]
        if folders:
            i, shown = folders[0]
            raise BakeoffError(f"{manifest}: row {i + 2}: {col} {shown!r} is a folder ({len(folders)} such row(s)); "
                               f"expected the path of one image file in every row")
        absent = [str(p) for p in paths if not p.is_file()]
        if absent:
            raise BakeoffError(f"{manifest}: {len(absent)} image path(s) do not exist (first: {absent[:3]}); expected "
                               f"existing image files, with paths relative to the CSV's folder")
        files[col] = paths
    # one image, one id however its path is spelt ("./a.png", "sub/../a.png", "a.png"): the same file twice
    # is then refused as a repeated id, before its twin could sit on the other side of the split
    first = path_columns[0]
    ids = [p.resolve().relative_to(root).as_posix() if p.resolve().is_relative_to(root) else str(p.resolve())
           for p in files[first]]
    seen: dict[str, int] = {}
    for i, key in enumerate(ids):
        if key in seen:
            raise BakeoffError(f"{manifest}: rows {seen[key] + 2} and {i + 2} name the same image {key!r} "
                               f"({rows[seen[key]][first]!r}, {rows[i][first]!r}); expected each image once: "
                               f"remove one of the rows")
        seen[key] = i
    return manifest, rows, columns, files, ids


def load_csv(path: str, *, channels: int | None, size: tuple[int, int] | None,
             allow_outside_root: bool = False, targets: str = "classes") -> ArrayData:
    manifest, rows, columns, files, ids = read_manifest(path, columns_needed=("path", "label"), path_columns=("path",),
                                                        allow_outside_root=allow_outside_root)
    paths = files["path"]
    if targets == "values":
        y, names = _numbers([r["label"] for r in rows], str(manifest)), None
    else:
        y, names = _labels([r["label"] for r in rows], str(manifest))
    X = lazy_images(paths, channels, size, str(manifest))
    data = from_arrays(X, y, ids=ids, spatial_dims=2, num_classes=None if names is None else len(names),
                       groups=[r["group"] for r in rows] if "group" in columns else None, name=str(manifest),
                       targets=targets)
    if names is not None:
        data.meta["class_names"] = names
    data.meta["manifest"] = str(manifest)  # (row k of the CSV is sample k - 2, for messages)
    for col in columns:
        if col not in ("path", "label", "group"):
            data.meta[f"column:{col}"] = np.array([r[col] for r in rows])
    return data


def load_folder(root: str, *, channels: int | None, size: tuple[int, int] | None) -> ArrayData:
    base = Path(root)
    if not base.is_dir():
        raise BakeoffError(f"data.source: folder {base} not found; expected {base}/<class>/<image>")
    classes = sorted(d.name for d in base.iterdir() if d.is_dir())
    files = [(f, c) for c in classes for f in sorted((base / c).iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
    if len(classes) < 2 or not files:
        raise BakeoffError(f"data.source: {base} holds {len(classes)} class folder(s) with {len(files)} images; "
                           f"expected at least two class folders of images")
    y = np.array([classes.index(c) for _, c in files], np.int64)
    X = lazy_images([f for f, _ in files], channels, size, str(base))
    data = from_arrays(X, y, ids=[f"{c}/{f.name}" for f, c in files], spatial_dims=2, num_classes=len(classes),
                       name=str(base))
    data.meta["class_names"] = classes
    return data


def imagenet_normalize(X: np.ndarray) -> np.ndarray:
    """Per-channel ImageNet mean/std on [0, 1] images (3 channels; 1 channel uses the channel means)."""
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if X.shape[1] == 3 else (IMAGENET_MEAN.mean(keepdims=True),
                                                                      IMAGENET_STD.mean(keepdims=True))
    return ((X - mean[None, :, None, None]) / std[None, :, None, None]).astype(np.float32)
