"""Images with per-pixel label masks for segmentation and particle picking, read lazily from disk.

An image is (C, *spatial) and its mask (*spatial) holds class labels 0..K-1. Images of one dataset may
differ in size. On-disk images (``npz_dir:`` and ``tiff_dir:``) are never held in memory as a whole
during training: every patch is read through a memory map that is opened for that read and closed
after it, so resident memory stays bounded by the batch, not the dataset.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.data.cache import npz_member
from bakeoff.data.registry import (
    REGISTRARS,
    SOURCES,
    USER_LOADERS,
    call_builtin,
    find_source,
    first_sentence,
    register_source,
)
from bakeoff.errors import BakeoffError
from bakeoff.utils import stable_hash

EPS = 1e-8
COORDS_PER_CLASS = 512  # pixel positions kept per image and class for class-balanced patch sampling


# -- array sources ----------------------------------------------------------------------------------------
class ArraySource:
    """An in-memory array."""

    def __init__(self, array: np.ndarray, name: str) -> None:
        self.array, self.name = array, name

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    def read(self, index: tuple[slice, ...] | None = None) -> np.ndarray:
        return np.asarray(self.array if index is None else self.array[index])


class NpyMemberSource:
    """One array inside an ``.npz`` file. Uncompressed members are memory-mapped at their offset in the
    zip file (numpy's own ``mmap_mode`` ignores ``.npz``; no library offers this), compressed ones are
    read whole on each access."""

    def __init__(self, path: Path, key: str) -> None:
        self.path, self.key, self.name = path, key, f"{path}[{key}]"
        try:
            shape, fortran, dtype, self.offset = npz_member(path, key)
        except KeyError:
            raise BakeoffError(f"{path}: no array {key!r}; expected arrays 'image' and 'mask'") from None
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise BakeoffError(f"{path}: cannot read as .npz ({exc}); expected a numpy .npz file") from None
        self.shape, self.dtype = tuple(shape), dtype

    def read(self, index: tuple[slice, ...] | None = None) -> np.ndarray:
        try:
            if self.offset is not None:
                mm = np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset, shape=self.shape)
                out = np.array(mm if index is None else mm[index])
                del mm  # unmapped now: pages read for this patch do not stay resident
                return out
            with np.load(self.path, allow_pickle=False) as f:
                arr = f[self.key]
            return np.asarray(arr if index is None else arr[index])
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
            raise BakeoffError(f"{self.name}: cannot read ({exc})") from None


class TiffSource:
    """A TIFF file (tifffile): memory-mapped when its pixels are stored contiguously, else read whole."""

    def __init__(self, path: Path) -> None:
        import logging

        import tifffile

        # tifffile logs its own message for a damaged file; ours below is the one line the user sees
        logging.getLogger("tifffile").setLevel(logging.CRITICAL)
        self.path, self.name = path, str(path)
        try:
            with tifffile.TiffFile(path) as tf:
                series = tf.series[0]
                self.shape, self.dtype = tuple(series.shape), np.dtype(series.dtype)
                self.mappable = bool(series.dataoffset is not None)
        except Exception as exc:  # noqa: BLE001 - any unreadable TIFF is the same user error
            raise BakeoffError(f"{path}: cannot read as TIFF ({exc}); expected a complete TIFF file: export or copy "
                               f"it again") from None

    def read(self, index: tuple[slice, ...] | None = None) -> np.ndarray:
        import tifffile

        try:
            if self.mappable:
                mm = tifffile.memmap(self.path, mode="r")
                out = np.array(mm if index is None else mm[index])
                del mm
                return out
            arr = tifffile.imread(self.path)
            return np.asarray(arr if index is None else arr[index])
        except Exception as exc:  # noqa: BLE001
            raise BakeoffError(f"{self.path}: cannot read TIFF pixels ({exc}); expected a complete TIFF file: export "
                               f"or copy it again") from None


# -- the dataset ------------------------------------------------------------------------------------------
@dataclass
class SegData:
    """Images and masks with ids, the number of classes and the pixel spacing; scanned once by ``check``."""

    images: list[Any]
    masks: list[Any]
    ids: np.ndarray
    num_classes: int | None
    spatial_dims: int
    spacing: tuple[float, ...] | None = None
    parts: np.ndarray | None = None  # "train"/"val"/"test" per image when the data fix the split
    groups: np.ndarray | None = None
    centres: list[np.ndarray] | None = None  # particle centres per image (pixel coordinates), if known
    class_names: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    # filled by check():
    class_pixels: np.ndarray | None = None  # (N, K) pixel count of every class in every mask
    stats: np.ndarray | None = None  # (N, 4) min, max, mean, std of each image
    coords: list[list[np.ndarray]] | None = None  # [image][class] -> (m, ndim) sampled positions
    digests: list[str] | None = None
    normalize: str = "minmax"
    # data.mask_values: the values the masks hold, in class order ([0, 255]: 255 is class 1); None: the
    # values are the class labels themselves
    mask_values: tuple[int, ...] | None = None
    # the masks are instance labels (0 background, one id per object: instance_segmentation); the class
    # counts and patch sampling then see background / object, and the ids are kept as they are
    instances: bool = False
    y: np.ndarray | None = None  # one dummy label per image, so sample-level code can count samples
    folds: np.ndarray | None = None
    stores: list[Any] = field(default_factory=list)  # where image files are decoded (bakeoff.data.cache)

    dense = True

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def in_channels(self) -> int:
        return int(self.images[0].shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.images[0].shape[1:])

    def spatial_shape(self, i: int) -> tuple[int, ...]:
        return tuple(int(s) for s in self.images[i].shape[1:])

    def fingerprint(self) -> str:
        return stable_hash([self.ids.tolist(), self.digests, self.num_classes, self.spacing]
                           + ([list(self.mask_values)] if self.mask_values is not None else []))

    def _labels(self, m: np.ndarray, name: str) -> np.ndarray:
        """Mask values as class labels 0..K-1 (through ``mask_values`` when the study gives them)."""
        m = m.astype(np.int64)
        if self.mask_values is None:
            return m
        values = np.asarray(self.mask_values, np.int64)
        order = np.argsort(values)
        pos = np.clip(np.searchsorted(values[order], m), 0, len(values) - 1)
        found = values[order][pos] == m
        if not found.all():
            raise BakeoffError(f"{name}: mask values {sorted(set(np.unique(m[~found]).tolist()))[:5]} are not in "
                               f"data.mask_values {list(self.mask_values)}; expected every value listed there")
        return order[pos]

    # -- reading ------------------------------------------------------------------------------------------
    def _norm(self, x: np.ndarray, i: int) -> np.ndarray:
        x = x.astype(np.float32, copy=False)
        lo, hi, mu, sd = (np.float32(v) for v in self.stats[i])
        if self.normalize == "minmax":
            return (x - lo) / np.float32(max(hi - lo, EPS))
        if self.normalize == "zscore":
            return (x - mu) / np.float32(max(sd, EPS))
        return x

    def image(self, i: int) -> np.ndarray:
        return self._norm(self.images[i].read(), i)

    def mask(self, i: int) -> np.ndarray:
        return self._labels(self.masks[i].read(), self.masks[i].name)

    def patch(self, i: int, start: tuple[int, ...], size: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """The normalised image patch (C, *size) and its mask, zero-padded where the image is smaller."""
        shape = self.spatial_shape(i)
        sl = tuple(slice(s, min(s + n, d)) for s, n, d in zip(start, size, shape))
        x = self._norm(self.images[i].read((slice(None),) + sl), i)
        y = self._labels(self.masks[i].read(sl), self.masks[i].name)
        if x.shape[1:] != tuple(size):
            pad = [(0, n - e) for n, e in zip(size, x.shape[1:])]
            x = np.pad(x, [(0, 0)] + pad)
            y = np.pad(y, pad)
        return x, y

    # -- checks -------------------------------------------------------------------------------------------
    def check(self, seed: int = 0) -> None:
        """One pass over every image and mask: shapes, dtypes, NaN, label range, class counts, stats."""
        if len(self.ids) == 0:
            raise BakeoffError(f"{self.meta.get('source', 'data')}: no images found")
        rng = np.random.default_rng(seed)
        K = self.num_classes
        counts, stats, coords, digests = [], [], [], []
        for _i, (img, msk) in enumerate(zip(self.images, self.masks)):
            if len(img.shape) != self.spatial_dims + 1:
                raise BakeoffError(f"{img.name}: image has shape {img.shape}; expected (C, *spatial) with "
                                   f"{self.spatial_dims} spatial dimensions")
            if tuple(msk.shape) != tuple(img.shape[1:]):
                raise BakeoffError(f"{msk.name}: mask has shape {tuple(msk.shape)} but its image has spatial "
                                   f"shape {tuple(img.shape[1:])}; expected the same")
            if img.shape[0] != self.images[0].shape[0]:
                raise BakeoffError(f"{img.name}: {img.shape[0]} channels but {self.images[0].name} has "
                                   f"{self.images[0].shape[0]}; expected the same for every image")
            if not (np.issubdtype(msk.dtype, np.integer) or np.issubdtype(msk.dtype, np.bool_)):
                raise BakeoffError(f"{msk.name}: mask has dtype {msk.dtype}; expected integer class labels")
            x = img.read()
            if not np.issubdtype(x.dtype, np.number):
                raise BakeoffError(f"{img.name}: image has dtype {x.dtype}; expected numbers")
            bad = ~np.isfinite(x)
            if bad.any():
                raise BakeoffError(f"{img.name}: {int(bad.sum())} NaN or inf pixels; expected finite values")
            xf = x.astype(np.float64)
            stats.append((xf.min(), xf.max(), xf.mean(), xf.std()))
            h = hashlib.blake2b(np.ascontiguousarray(x).tobytes(), digest_size=12)
            del x, xf
            m = self._labels(msk.read(), msk.name)
            if self.instances:  # object ids: counted and sampled as background / object
                if m.min() < 0:
                    raise BakeoffError(f"{msk.name}: mask values down to {int(m.min())}; expected object ids "
                                       f"(0 background, positive integers one per object)")
                h.update(np.ascontiguousarray(m).tobytes())
                m = (m > 0).astype(np.int64)
            elif m.min() < 0 or (K is not None and m.max() >= K):
                bad_vals = sorted(set(np.unique(m).tolist()) - set(range(K or 0)))[:5]
                want = f"0..{K - 1}" if K else "labels >= 0"
                raise BakeoffError(f"{msk.name}: mask values {bad_vals} outside {want}; expected class labels "
                                   f"in {want} (data.num_classes = {K})")
            if not self.instances:
                h.update(np.ascontiguousarray(m).tobytes())
            digests.append(h.hexdigest())
            counts.append(np.bincount(m.ravel(), minlength=max(K or 0, int(m.max()) + 1)))
            per_class = []
            flat = m.ravel()
            for k in range(len(counts[-1])):
                where = np.flatnonzero(flat == k)
                if len(where) > COORDS_PER_CLASS:
                    where = rng.choice(where, COORDS_PER_CLASS, replace=False)
                per_class.append(np.stack(np.unravel_index(where, m.shape), axis=1).astype(np.int32))
            coords.append(per_class)
            del m, flat
        if K is None:
            K = max(len(c) for c in counts)
            present = np.flatnonzero(np.sum([np.pad(c, (0, K - len(c))) for c in counts], axis=0))
            if len(present) < K:  # 0/255 masks (a binary mask saved for display) are not 256 classes
                shown = [int(v) for v in present[:6]]
                raise BakeoffError(
                    f"{self.meta.get('source', 'data')}: the masks hold the values {shown}"
                    f"{' ...' if len(present) > 6 else ''}, not the class labels 0..{len(present) - 1}; expected "
                    f"labels 0..K-1: set data.mask_values: {shown} to read them as classes 0..{len(present) - 1}"
                    f" in that order, or data.num_classes: {K} if the classes in between are real but absent")
            self.num_classes = K
        self.class_pixels = np.stack([np.pad(c, (0, K - len(c))) for c in counts])
        for per_class in coords:
            per_class.extend(np.zeros((0, self.spatial_dims), np.int32) for _ in range(K - len(per_class)))
        self.stats = np.asarray(stats, dtype=np.float64)
        self.coords, self.digests = coords, digests
        self.y = np.zeros(len(self.ids), dtype=np.int64)
        if self.spacing is None:
            self.spacing = (1.0,) * self.spatial_dims
        if len(self.spacing) != self.spatial_dims:
            raise BakeoffError(f"data.spacing: {list(self.spacing)} has {len(self.spacing)} values; expected "
                               f"{self.spatial_dims} (one per spatial axis)")


def _with_channel(a: np.ndarray, spatial_dims: int) -> np.ndarray:
    return a[None] if a.ndim == spatial_dims else a


def from_image_arrays(images: list[np.ndarray], masks: list[np.ndarray], *, ids: list[str] | None = None,
                      spatial_dims: int = 2, num_classes: int | None = None, **kw: Any) -> SegData:
    ids = ids or [f"img{i:04d}" for i in range(len(images))]
    if len(images) != len(masks):
        raise BakeoffError(f"data: {len(images)} images but {len(masks)} masks; expected one mask per image")
    return SegData(images=[ArraySource(_with_channel(np.asarray(a), spatial_dims), f"image {n}")
                           for a, n in zip(images, ids)],
                   masks=[ArraySource(np.asarray(m), f"mask {n}") for m, n in zip(masks, ids)],
                   ids=np.asarray(ids).astype(str), spatial_dims=spatial_dims, num_classes=num_classes, **kw)


class _ChannelFirst:
    """A view that adds a leading channel axis to a single-channel source."""

    def __init__(self, src: Any) -> None:
        self.src, self.name, self.dtype = src, src.name, src.dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return (1, *self.src.shape)

    def read(self, index: tuple[slice, ...] | None = None) -> np.ndarray:
        return self.src.read(None if index is None else index[1:])[None]


PART_FOLDERS = ("train", "val", "test")


def _dims_from_first_mask(kind: str, base: Path) -> int:
    """Without data.spatial_dims: a mask has no channel axis, so its rank is the data's spatial rank
    (an image (32, 32, 32) with a mask (32, 32, 32) is one 3D volume, not 32 channels of 2D)."""
    first = None
    for part in PART_FOLDERS:
        folder = base / part
        if kind == "npz_dir":
            found = sorted(folder.glob("*.npz"))
            first = NpyMemberSource(found[0], "mask") if found else None
        else:
            found = sorted(p for p in (folder / "masks").glob("*") if p.suffix.lower() in (".tif", ".tiff"))
            first = TiffSource(found[0]) if found else None
        if first is not None:
            break
    if first is None:
        return 2
    rank = len(first.shape)
    if rank not in (2, 3):
        raise BakeoffError(f"{found[0]}: mask has shape {tuple(first.shape)}; expected a 2D (H, W) or 3D (D, H, W) "
                           f"label map; set data.spatial_dims if the data are {rank - 1}D with a channel axis")
    return rank


def load_folder_source(kind: str, root: str, spatial_dims: int | None, num_classes: int | None,
                       spacing: tuple[float, ...] | None) -> SegData:
    """``npz_dir:ROOT`` (ROOT/{train,val,test}/*.npz with ``image`` and ``mask``) or ``tiff_dir:ROOT``
    (ROOT/{train,val,test}/images/NAME.tif with ROOT/{train,val,test}/masks/NAME.tif)."""
    base = Path(root)
    if not base.is_dir():
        raise BakeoffError(f"data.source: folder {base} not found; expected {base}/train and {base}/val")
    images, masks, ids, parts = [], [], [], []
    sd = spatial_dims or _dims_from_first_mask(kind, base)
    for part in PART_FOLDERS:
        folder = base / part
        if not folder.is_dir():
            if part != "test":
                raise BakeoffError(f"data.source: {folder} not found; expected folders train/, val/ "
                                   f"(and optionally test/) in {base}")
            continue
        if kind == "npz_dir":
            files = sorted(folder.glob("*.npz"))
            for f in files:
                img, msk = NpyMemberSource(f, "image"), NpyMemberSource(f, "mask")
                images.append(_ChannelFirst(img) if len(img.shape) == sd else img)
                masks.append(msk)
                ids.append(f"{part}/{f.stem}")
                parts.append(part)
        else:
            files = sorted(p for p in (folder / "images").glob("*") if p.suffix.lower() in (".tif", ".tiff"))
            for f in files:
                mpath = folder / "masks" / f.name
                if not mpath.is_file():
                    raise BakeoffError(f"{f}: no mask {mpath}; expected a mask of the same name in masks/")
                img, msk = TiffSource(f), TiffSource(mpath)
                images.append(_ChannelFirst(img) if len(img.shape) == sd else img)
                masks.append(msk)
                ids.append(f"{part}/{f.stem}")
                parts.append(part)
        if not files and part != "test":
            what = "*.npz files" if kind == "npz_dir" else "images/*.tif files"
            raise BakeoffError(f"data.source: {folder} is empty; expected {what}")
    data = SegData(images=images, masks=masks, ids=np.asarray(ids), num_classes=num_classes,
                   spatial_dims=sd, spacing=spacing, parts=np.asarray(parts))
    data.meta["source"] = f"{kind}:{root}"
    return data


def load_dense_source(source: str, params: dict[str, Any] | None, *, spatial_dims: int | None,
                      num_classes: int | None, spacing: list[float] | None, normalize: str,
                      mask_values: list[int] | None = None, channels: int | None = None,
                      allow_outside_root: bool = False, instances: bool = False) -> SegData:
    """A registered dense source (``bakeoff list sources``): ``builtin:organelles2d|cryoem2d|nuclei2d``,
    ``npz_dir:FOLDER``, ``tiff_dir:FOLDER`` or ``csv:MANIFEST`` (image,mask files), checked and normalised."""
    spec, rest = find_source(source, dense=True)
    if spec.instances and not instances:
        raise BakeoffError(f"data.source: {source} holds instance labels (one id per object), not classes; "
                           f"expected task: instance_segmentation (or a source of class masks)")
    sp = None if spacing is None else tuple(float(s) for s in spacing)
    data = spec.loader(rest, dict(params or {}), source=source, spatial_dims=spatial_dims, num_classes=num_classes,
                       spacing=sp, channels=channels, allow_outside_root=allow_outside_root)
    data.normalize = normalize
    data.instances = instances
    if instances:  # the network's classes are background / object; each mask value is an object's id
        data.num_classes, data.class_names = 2, ["background", "object"]
    if mask_values is not None:
        if num_classes is not None and num_classes != len(mask_values):
            raise BakeoffError(f"data.mask_values: {len(mask_values)} values but data.num_classes is {num_classes}; "
                               f"expected one value per class (or leave num_classes out)")
        data.mask_values = tuple(int(v) for v in mask_values)
        data.num_classes = len(mask_values)
    data.check()
    return data


def dense_loader(fn: Any) -> Any:
    """A dense source from a generator (built in, or the user's ``package.module:callable``) returning
    ``{"images", "masks"[, "class_names", "ids", "centres", "parts"]}``."""
    def load(rest: str, params: dict[str, Any], *, source: str, spatial_dims: int | None,
             num_classes: int | None, spacing: tuple[float, ...] | None, **_: Any) -> SegData:
        out = call_builtin(fn, source, params, needs=("images", "masks"))
        names = out.get("class_names")
        k = num_classes or (len(names) if names is not None else int(max(np.max(m) for m in out["masks"])) + 1)
        data = from_image_arrays(out["images"], out["masks"], ids=out.get("ids"), spatial_dims=spatial_dims or 2,
                                 num_classes=k, spacing=spacing, class_names=names, centres=out.get("centres"),
                                 parts=None if out.get("parts") is None else np.asarray(out["parts"]))
        data.meta["source"] = source
        return data

    return load


def _register_dense_sources() -> None:
    """Register the dense sources once (the built-in generators live in seg_builtin, imported lazily)."""
    if ("npz_dir", True) in SOURCES:
        return
    from bakeoff.data.seg_builtin import SEG_BUILTINS

    for name, fn in SEG_BUILTINS.items():
        register_source(f"builtin:{name}", dense=True, doc=first_sentence(fn.__doc__))(dense_loader(fn))

    def folder(kind: str) -> Any:
        def load(rest: str, params: dict[str, Any], *, source: str, spatial_dims: int | None,
                 num_classes: int | None, spacing: tuple[float, ...] | None, **_: Any) -> SegData:
            if params:
                raise BakeoffError(f"data.params: {source} takes no parameters, got {sorted(params)}")
            return load_folder_source(kind, rest, spatial_dims, num_classes, spacing)

        return load

    register_source("npz_dir", dense=True, doc="FOLDER/{train,val,test}/*.npz with arrays image and mask")(
        folder("npz_dir"))
    register_source("tiff_dir", dense=True, doc="FOLDER/{train,val,test}/{images,masks}/NAME.tif")(folder("tiff_dir"))
    register_source("csv", dense=True, doc="a manifest CSV of image and mask files (PNG/JPEG/TIFF; optional fold, "
                                           "group, split)")(load_csv_pairs)


def load_csv_pairs(rest: str, params: dict[str, Any], *, source: str, spatial_dims: int | None,
                   num_classes: int | None, spacing: tuple[float, ...] | None, channels: int | None = None,
                   allow_outside_root: bool = False, **_: Any) -> SegData:
    """``csv:MANIFEST`` with columns ``image,mask`` (paths relative to the CSV; masks are label images)
    and optional ``group``, ``fold``, ``split`` columns (split kinds ``column`` / ``kfold_column`` as for
    classification). Headers are read here; the pixels are decoded once into the study's cache
    (``bakeoff.data.cache.PairStore``) and read patch by patch from there."""
    from bakeoff.data.cache import PairFiles, PairSource, PairStore
    from bakeoff.data.images import read_manifest

    if params:
        raise BakeoffError(f"data.params: {source} takes no parameters, got {sorted(params)}")
    if spatial_dims == 3:
        raise BakeoffError(f"data.spatial_dims: 3; {source} lists 2D image files; expected 2 (3D volumes: "
                           f"tiff_dir: or npz_dir:)")
    manifest, rows, columns, files, ids = read_manifest(rest, columns_needed=("image", "mask"),
                                                        path_columns=("image", "mask"),
                                                        allow_outside_root=allow_outside_root)
    pairs = PairFiles(files["image"], files["mask"], channels, str(manifest))
    pairs.heads()
    store = PairStore(pairs)
    data = SegData(images=[PairSource(store, i, "image") for i in range(len(ids))],
                   masks=[PairSource(store, i, "mask") for i in range(len(ids))], ids=np.asarray(ids),
                   num_classes=num_classes, spatial_dims=2, spacing=spacing,
                   groups=np.asarray([r["group"] for r in rows]) if "group" in columns else None)
    data.stores = [store]
    data.meta["source"] = source
    for col in columns:
        if col not in ("image", "mask", "group"):
            data.meta[f"column:{col}"] = np.array([r[col] for r in rows])
    return data


REGISTRARS[True].append(_register_dense_sources)  # run by data.registry.load_sources when first asked
USER_LOADERS[True] = dense_loader
