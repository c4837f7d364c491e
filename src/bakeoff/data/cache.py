"""Image files decoded once, kept on disk, read by batch.

An image source (``csv:``, ``folder:``) is described without decoding a pixel: its files, their headers
(size, channels, bit depth) and the decode settings (``data.image_size``, ``data.channels``, bilinear
resizing). The pixels are decoded once per (files, settings) into a cache: one ``.npy`` file of shape
(N, C, H, W) in the stored dtype (uint8 for 8-bit images, uint16 for 16-bit ones, float32 only for float
images or mixed bit depths), with ``meta.json`` beside it (per-sample digests for the leakage check,
per-channel statistics for ``normalize: dataset``). Normalisation is applied per batch (``Normalizer``,
on the device when training there), so every run, process, Ray worker and SLURM job of a study reads the
same cache and none decodes again.

Why a plain ``.npy`` read with ``os.pread``: measured on 384-px RGB images (benchmarks/bench_data_scale.py,
README "Data of any size"), a sample is one contiguous 442 KB read, with nothing to decompress; numpy's own
format needs no further dependency and opens with ``np.load(mmap_mode="r")`` for anyone inspecting it.
Reads go through ``pread`` rather than a long-lived memory map: pages of a map that a process has touched
count in its resident memory (RSS), pages read into a buffer do not, so a pass over a 35 GB cache keeps the
process's memory at the batch. Chunked formats (zarr) or shard streams (LitData, WebDataset) add
compression or sequential shards that random access per sample does not need.

Integrity: the cache is written under a temporary name in the cache folder and renamed whole when done,
under a file lock (``filelock``) so that concurrent processes (SLURM jobs, two studies sharing
``data.cache_dir``) build it once while the others wait; a temporary left by a killed builder is removed
by the next one. The key holds every file's path, size and modification time and the decode settings, so
a changed image or setting never reuses a stale cache. Each build appends a line to ``builds.log``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.errors import BakeoffError
from bakeoff.faults import kill_point
from bakeoff.utils import file_stats, nearest_existing, stable_hash, write_json

CACHE_VERSION = 1
CACHE_DIR = "cache"  # DIR/cache, unless data.cache_dir names another folder
META_FILE = "meta.json"
ARRAY_FILE = "images.npy"
BUILDS_LOG = "builds.log"  # one line per cache built: what the tests count
IN_MEMORY_BYTES = 2 << 30  # data of at most this many stored bytes are read into memory whole (data.in_memory)
CHECK_DECODE_BYTES = 256 << 20  # check decodes (in memory) data this small for the pixel checks; larger: the run
PREFETCH = 3  # batches read ahead by the streaming reader's thread
EPS = 1e-8
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
PIL_PLAIN = {"L": (1, np.uint8), "RGB": (3, np.uint8), "I;16": (1, np.uint16), "I;16B": (1, np.uint16),
             "I;16L": (1, np.uint16), "I": (1, np.float32), "F": (1, np.float32)}


def _unreadable(path: Path, exc: BaseException) -> BakeoffError:
    return BakeoffError(f"{path}: cannot read image ({type(exc).__name__}: {exc}); expected a complete image file "
                        f"({', '.join(IMAGE_SUFFIXES)}): export it again, or remove its row")


# -- one file: header and decode --------------------------------------------------------------------------
def read_header(path: Path) -> tuple[int, tuple[int, int], np.dtype]:
    """(channels, (H, W), dtype) of an image file as decoded (alpha dropped, palettes as RGB), from its
    header alone."""
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tf:
                series = tf.series[0]
                shape, dtype = tuple(series.shape), np.dtype(series.dtype)
            c, hw = _tiff_layout(shape, path)
            return c, hw, (np.dtype(np.uint8) if dtype == np.bool_ else dtype)
        from PIL import Image

        with Image.open(path) as im:
            c, dt = PIL_PLAIN.get(im.mode, (3, np.uint8))  # palette, CMYK, alpha, bilevel: read as RGB
            return c, (im.size[1], im.size[0]), np.dtype(dt)
    except BakeoffError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable image is the same user error
        raise _unreadable(path, exc) from None


def _tiff_layout(shape: tuple[int, ...], path: Path) -> tuple[int, tuple[int, int]]:
    if len(shape) == 2:
        return 1, (shape[0], shape[1])
    if len(shape) == 3 and shape[-1] in (1, 3, 4) and shape[0] not in (1, 3, 4):
        return min(shape[-1], 3), (shape[0], shape[1])
    if len(shape) == 3:
        return min(shape[0], 3) if shape[0] == 4 else shape[0], (shape[1], shape[2])
    raise BakeoffError(f"{path}: image has shape {shape}; expected a 2D grayscale or colour image")


def _pixels(path: Path) -> np.ndarray:
    """The file's pixels as stored, (C, H, W), alpha dropped."""
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            arr = np.asarray(tifffile.imread(path))
            if arr.dtype == np.bool_:
                arr = arr.astype(np.uint8)
        else:
            from PIL import Image

            with Image.open(path) as im:
                im.load()
                if im.mode not in PIL_PLAIN:
                    im = im.convert("RGB")
                arr = np.asarray(im)
                if im.mode == "I":
                    arr = arr.astype(np.float32)
    except Exception as exc:  # noqa: BLE001
        raise _unreadable(path, exc) from None
    if arr.ndim == 2:
        arr = arr[None]
    elif arr.ndim == 3 and arr.shape[-1] in (1, 3, 4) and arr.shape[0] not in (1, 3, 4):
        arr = np.moveaxis(arr, -1, 0)
    if arr.ndim != 3:
        raise BakeoffError(f"{path}: image has shape {arr.shape}; expected a 2D grayscale or colour image")
    return arr[:3] if arr.shape[0] == 4 else arr


def _as_float(arr: np.ndarray) -> np.ndarray:
    """Values in [0, 1] for integer images (uint8 / 255, uint16 / 65535), as float32."""
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535
    return arr.astype(np.float32)


def decode(path: Path, channels: int | None, size: tuple[int, int] | None, dtype: np.dtype) -> np.ndarray:
    """One image as stored in the cache: (C, H, W) in ``dtype``, converted to ``channels`` (grey <-> RGB,
    ITU-R 601 luma as Pillow's "L") and resized to ``size`` (bilinear, Pillow's filter with its
    antialiasing when shrinking). 8-bit images are converted and resized as 8-bit images by Pillow; others
    in float32 (16-bit ones rounded back to uint16)."""
    from PIL import Image

    arr = _pixels(path)
    if dtype == np.uint8 and arr.dtype == np.uint8:
        if channels == 1 and arr.shape[0] == 3:
            arr = np.asarray(Image.fromarray(np.moveaxis(arr, 0, -1)).convert("L"))[None]
        elif channels == 3 and arr.shape[0] == 1:
            arr = np.repeat(arr, 3, axis=0)
        if size is not None and tuple(arr.shape[1:]) != tuple(size):
            arr = np.stack([np.asarray(Image.fromarray(c).resize((size[1], size[0]), Image.BILINEAR)) for c in arr])
        return np.ascontiguousarray(arr)
    x = _as_float(arr) if dtype == np.float32 else arr.astype(np.float32)
    if channels == 3 and x.shape[0] == 1:
        x = np.repeat(x, 3, axis=0)
    elif channels == 1 and x.shape[0] == 3:
        x = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None].astype(np.float32)
    if size is not None and tuple(x.shape[1:]) != tuple(size):
        x = np.stack([np.asarray(Image.fromarray(c).resize((size[1], size[0]), Image.BILINEAR)) for c in x])
    if dtype == np.uint16:
        return np.clip(np.rint(x), 0, 65535).astype(np.uint16)
    if not np.all(np.isfinite(x)):
        raise BakeoffError(f"{path}: NaN or inf pixels; expected finite values")
    return np.ascontiguousarray(x, dtype=np.float32)


# -- arrays inside an .npz --------------------------------------------------------------------------------
def _npy_header(f: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return reader(f)


def npz_member(path: Path, key: str) -> tuple[tuple[int, ...], bool, np.dtype, int | None]:
    """(shape, fortran order, dtype, byte offset of the pixels in the file) of array ``key`` in an ``.npz``;
    the offset only where the member is stored uncompressed in C order, so that its rows can be read in
    place (numpy's own ``mmap_mode`` ignores ``.npz``; no library offers this). KeyError: no such array."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(f"{key}.npy")
        with zf.open(info) as f:
            shape, fortran, dtype = _npy_header(f)
    offset = None
    if info.compress_type == zipfile.ZIP_STORED and not fortran and not dtype.hasobject:
        with open(path, "rb") as raw:
            raw.seek(info.header_offset)
            head = raw.read(30)
            n_name, n_extra = struct.unpack("<HH", head[26:30])
            raw.seek(info.header_offset + 30 + n_name + n_extra)
            _npy_header(raw)
            offset = raw.tell()
    return tuple(shape), bool(fortran), dtype, offset


# -- normalisation, per batch -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Normalizer:
    """What turns a batch of stored pixels into the network's input: integer images to [0, 1] (uint8 / 255,
    uint16 / 65535), then ``method`` (per sample: minmax, zscore; per channel: imagenet, dataset with the
    statistics of every image of the dataset, label-free). One torch function for every path a batch
    takes (in memory, streamed, on the CPU or the GPU), so the paths give the same numbers."""

    method: str
    divisor: float = 1.0
    mean: tuple[float, ...] | None = None  # per channel ("dataset")
    std: tuple[float, ...] | None = None

    def __call__(self, x: Any) -> Any:
        """A float32 copy of ``x`` normalised in place (one batch-sized temporary, however many steps)."""
        import torch

        x = x.to(torch.float32, copy=True)
        if self.divisor != 1.0:
            x.div_(self.divisor)
        m = self.method
        if m == "none":
            return x
        shape = (1, -1) + (1,) * (x.ndim - 2)
        if m in ("dataset", "imagenet"):
            if m == "imagenet":
                mu, sd = (IMAGENET_MEAN, IMAGENET_STD) if x.shape[1] == 3 else \
                    (IMAGENET_MEAN.mean(keepdims=True), IMAGENET_STD.mean(keepdims=True))
            else:
                mu = np.asarray(self.mean, np.float32)
                sd = np.maximum(np.asarray(self.std, np.float32), np.float32(EPS))
            return x.sub_(torch.as_tensor(mu, device=x.device).view(shape)).div_(
                torch.as_tensor(sd, device=x.device).view(shape))
        axes = tuple(range(1, x.ndim))
        if m == "minmax":
            lo, hi = x.amin(dim=axes, keepdim=True), x.amax(dim=axes, keepdim=True)
            return x.sub_(lo).div_((hi - lo).clamp_min(EPS))
        if m == "zscore":
            mu = x.mean(dim=axes, keepdim=True)
            sd = x.std(dim=axes, keepdim=True, correction=0).clamp_min(EPS)
            return x.sub_(mu).div_(sd)
        raise ValueError(f"unknown normalisation {m!r}")


# -- the files of a source, and their decoded store --------------------------------------------------------
class ImageFiles:
    """The image files of a source and how to decode them; headers read on demand, pixels never here."""

    def __init__(self, paths: list[Path], channels: int | None, size: tuple[int, int] | None, name: str) -> None:
        self.paths, self.channels, self.size, self.name = [Path(p) for p in paths], channels, size, name
        self._layout: tuple[tuple[int, int, int], np.dtype] | None = None

    def layout(self) -> tuple[tuple[int, int, int], np.dtype]:
        """(C, H, W) of every decoded image and the stored dtype, from the headers; images that would not
        be uniform are refused as before decoding."""
        if self._layout is None:
            heads = _map(read_header, self.paths)
            shapes = {(self.channels or c, *(self.size or hw)) for c, hw, _ in heads}
            if len(shapes) > 1:
                raise BakeoffError(f"{self.name}: images differ in size or channels ({sorted(shapes)[:3]}); expected "
                                   f"data.image_size (e.g. 224) and data.channels (1 or 3) to make them uniform")
            dtypes = {np.dtype(d) for _, _, d in heads}
            converted = self.channels == 1 and any(c == 3 for c, _, _ in heads)
            if dtypes == {np.dtype(np.uint8)}:
                dtype = np.dtype(np.uint8)
            elif dtypes == {np.dtype(np.uint16)} and not converted:
                dtype = np.dtype(np.uint16)
            else:
                dtype = np.dtype(np.float32)
            self._layout = (shapes.pop(), dtype)
        return self._layout

    @property
    def n(self) -> int:
        return len(self.paths)

    what = "image files"
    direct: tuple[Path, int] | None = None  # (file, offset) of samples readable in place: none for images

    def describe(self) -> dict[str, Any]:
        return {"channels": self.channels, "image_size": list(self.size or []), "resize": "bilinear"}

    def chunks(self, chunk: int):
        """(first index, decoded images) in order, decoded in threads."""
        with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
            for start in range(0, self.n, chunk):
                yield start, np.stack(list(pool.map(self.decode, range(start, min(self.n, start + chunk)))))

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return self.layout()[0]

    @property
    def dtype(self) -> np.dtype:
        return self.layout()[1]

    @property
    def nbytes(self) -> int:
        return int(self.n * np.prod(self.sample_shape) * self.dtype.itemsize)

    def divisor(self) -> float:
        return {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(self.dtype, 1.0)

    def key(self) -> str:
        """Every file's path, size and modification time, and the decode settings; taken once (when first
        asked: at planning), so that every process of a study reads the same cache whatever happens to the
        files meanwhile (a file changed after that is noticed by the next study's load)."""
        if getattr(self, "_key", None) is None:
            self._key = self._compute_key()
        return self._key

    def _compute_key(self) -> str:
        return stable_hash([CACHE_VERSION, file_stats(self.paths), self.channels, list(self.size or []), "bilinear",
                            list(self.sample_shape), str(self.dtype)])

    def decode(self, i: int) -> np.ndarray:
        return decode(self.paths[i], self.channels, self.size, self.dtype)

    def sample_check(self, n: int = 8) -> None:
        """Decode a few images spread over the list (the first and last among them): a quick look."""
        for i in spread(self.n, n):
            self.decode(i)


def spread(n: int, k: int) -> list[int]:
    """At most ``k`` positions of ``range(n)`` spread evenly, the first and the last among them."""
    return sorted({int(round(j)) for j in np.linspace(0, n - 1, min(k, n))})


def _map(fn: Callable[[Any], Any], items: list[Any], workers: int | None = None) -> list[Any]:
    """``fn`` over ``items`` in threads (Pillow and tifffile release the GIL while reading and decoding)."""
    workers = workers or min(8, os.cpu_count() or 1)
    if workers <= 1 or len(items) < 64:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


class Say:
    """Progress lines on stderr for a long decode: at most one every ``every_s`` seconds, with the ETA
    (plain lines, so that a log file or a pipe gets them too)."""

    def __init__(self, what: str, total: int, every_s: float = 5.0, clock: Callable[[], float] = time.perf_counter) -> None:
        self.what, self.total, self.every_s, self.clock = what, total, every_s, clock
        self.t0 = self.last = clock()
        self.shown = False

    def __call__(self, done: int) -> None:
        now = self.clock()
        if done < self.total and now - self.last < self.every_s:
            return
        if done >= self.total and not self.shown:
            return  # quick: no lines at all
        self.last, self.shown = now, True
        el = now - self.t0
        eta = el / done * (self.total - done) if done else float("nan")
        tail = "done" if done >= self.total else f"about {eta:,.0f} s left"
        print(f"{self.what}: {done:,}/{self.total:,} images ({done / self.total:.0%}), {el:,.0f} s, {tail}",
              file=sys.stderr, flush=True)


def build_once(folder: Path, need: int, name: str, fill: Callable[[Path], dict[str, Any]]) -> bool:
    """Make the cache ``folder`` unless it is there: under a file lock (one builder; the others wait, then
    find it built), in a temporary folder renamed whole when ``fill`` (which writes the files and returns the
    meta data) is done, on a disk checked for ``need`` bytes first. True when this call built it."""
    from filelock import FileLock

    if (folder / META_FILE).is_file():
        return False
    root = folder.parent
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f".{folder.name}.lock")):
        if (folder / META_FILE).is_file():  # another process built it meanwhile
            return False
        free = shutil.disk_usage(root).free
        if free < need + (64 << 20):
            raise BakeoffError(f"data.cache_dir: decoding {name} needs {_size(need)} in {root}, which has "
                               f"{_size(free)} free; expected room for the decoded images: free space there, or set "
                               f"data.cache_dir to a folder on a larger disk")
        tmp = root / f".{folder.name}.partial"
        shutil.rmtree(tmp, ignore_errors=True)  # a killed builder's leftovers (we hold the lock)
        tmp.mkdir()
        t0 = time.perf_counter()
        meta = fill(tmp)
        write_json(tmp / META_FILE, meta)
        kill_point("cache-rename")
        os.replace(tmp, folder)
        with open(root / BUILDS_LOG, "a") as log:
            log.write(json.dumps({"key": folder.name, "source": name, "n": meta.get("n"), "bytes": need,
                                  "decode_s": round(time.perf_counter() - t0, 3), "pid": os.getpid(),
                                  "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n")
    return True


class NpzArray:
    """The ``X`` array of an ``npz:`` file, sample by sample: read in place when the member is stored
    uncompressed in C order in a type the cache keeps (uint8, uint16, int8, int16, float32), else decoded
    once into the cache (float64 and other integers as float32, as ``from_arrays`` gives them), streamed
    out of the zip file a chunk at a time. Values are not rescaled (``divisor`` 1), as for arrays in memory."""

    what = "samples of an .npz"
    KEPT = {np.dtype(t) for t in (np.uint8, np.uint16, np.int8, np.int16, np.float32)}

    def __init__(self, path: Path, key: str, spatial_dims: int | None, name: str) -> None:
        self.path, self.member, self.name = Path(path), key, name
        shape, fortran, raw, offset = npz_member(self.path, key)
        if fortran or len(shape) < 3:
            raise ValueError("not a C-order array of samples")  # the loader reads it whole, as before
        sd = spatial_dims or (2 if len(shape) == 3 else 3)
        self.n, self.raw_dtype, self.raw_shape = int(shape[0]), np.dtype(raw), tuple(int(s) for s in shape)
        self.sample_shape = (1, *self.raw_shape[1:]) if len(shape) == sd + 1 else self.raw_shape[1:]
        self.dtype = self.raw_dtype if self.raw_dtype in self.KEPT else np.dtype(np.float32)
        if self.raw_dtype == np.bool_:
            self.dtype = np.dtype(np.uint8)
        self.direct = (self.path, offset) if offset is not None and self.dtype == self.raw_dtype else None
        self.paths = [self.path]
        self._key: str | None = None

    @property
    def nbytes(self) -> int:
        return int(self.n * np.prod(self.sample_shape) * self.dtype.itemsize)

    def divisor(self) -> float:
        return 1.0

    def describe(self) -> dict[str, Any]:
        return {"member": self.member}

    def key(self) -> str:
        if self._key is None:
            st = self.path.stat()
            self._key = stable_hash([CACHE_VERSION, "npz", str(self.path.resolve()), st.st_size, st.st_mtime_ns,
                                     self.member, list(self.sample_shape), str(self.dtype)])
        return self._key

    def chunks(self, chunk: int):
        """(first index, samples as stored in the cache) in order, read sequentially out of the zip file."""
        import zipfile

        row = int(np.prod(self.raw_shape[1:])) * self.raw_dtype.itemsize
        with zipfile.ZipFile(self.path) as zf, zf.open(f"{self.member}.npy") as f:
            _npy_header(f)
            for start in range(0, self.n, chunk):
                m = min(self.n, start + chunk) - start
                buf = f.read(row * m)
                if len(buf) != row * m:
                    raise BakeoffError(f"{self.name}: array {self.member!r} ends early (sample {start}); expected a "
                                       f"complete .npz written by np.savez")
                block = np.frombuffer(buf, self.raw_dtype).reshape(m, *self.sample_shape)
                yield start, block.astype(self.dtype, copy=False)

    def sample_check(self, n: int = 8) -> None:
        next(iter(self.chunks(min(n, self.n))))


class ImageStore:
    """The decoded pixels of ``files``: a cache under ``root`` (built on first use), or, without a root,
    an array in memory. Pickles by reference when on disk (a Ray worker or a spawned process opens the
    same cache)."""

    def __init__(self, files: ImageFiles, root: Path | None = None, in_memory: bool | None = None) -> None:
        self.files, self.root, self.in_memory = files, None if root is None else Path(root), in_memory
        self._array: np.ndarray | None = None  # in memory (no root)
        self.meta: dict[str, Any] | None = None
        self._fd: int | None = None
        self.opened_s = 0.0

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fd"] = None
        return state

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass

    @property
    def ready(self) -> bool:
        return self.meta is not None

    def forget(self) -> None:
        """Drop what was decoded (into memory): the next read opens (or builds) the cache."""
        self._array, self.meta = None, None

    @property
    def folder(self) -> Path | None:
        return None if self.root is None else self.root / self.files.key()

    def ensure(self) -> None:
        if self.meta is not None:
            return
        if self.root is None:
            self._decode_in_memory()
        else:
            self._open_or_build()

    # -- building -------------------------------------------------------------------------------------
    def _decode_in_memory(self) -> None:
        files = self.files
        out = np.empty((files.n, *files.sample_shape), files.dtype)
        digests, acc = [], _ChannelStats(files.sample_shape[0])
        t0 = time.perf_counter()
        for start, chunk in self._chunks():
            out[start:start + len(chunk)] = chunk
            digests.extend(_digests(chunk))
            acc.add(chunk, files.divisor())
        self._array = out
        self.meta = self._meta(digests, acc, time.perf_counter() - t0)

    def _chunks(self, chunk: int = 64):
        """(first index, decoded samples) in order, a chunk at a time, with progress lines; non-finite
        values (float data) refused naming the first sample."""
        files = self.files
        say = Say(f"decoding {files.name}", files.n)
        for start, block in files.chunks(chunk):
            kill_point("cache")
            if block.dtype.kind == "f" and not np.isfinite(block).all():
                bad = start + int(np.flatnonzero(~np.isfinite(block).reshape(len(block), -1).all(1))[0])
                raise BakeoffError(f"{files.name}: sample {bad} holds NaN or inf; expected finite values")
            yield start, block
            say(min(files.n, start + len(block)))

    def _meta(self, digests: list[str], acc: _ChannelStats, seconds: float) -> dict[str, Any]:
        files = self.files
        mean, std = acc.result()
        return {"version": CACHE_VERSION, "source": files.name, "n": files.n,
                "shape": [files.n, *files.sample_shape], "dtype": str(files.dtype),
                "divisor": files.divisor(), "bytes": files.nbytes, "digests": digests,
                "content": hashlib.sha256("".join(digests).encode()).hexdigest()[:16],
                "mean": mean, "std": std, "decode_s": round(seconds, 3), **files.describe(),
                "in_place": files.direct is not None, "built": time.strftime("%Y-%m-%dT%H:%M:%S%z")}

    def _open_or_build(self) -> None:
        t0 = time.perf_counter()
        folder = self.folder
        assert folder is not None
        build_once(folder, 0 if self.files.direct else self.files.nbytes, self.files.name, self._fill)
        self.meta = json.loads((folder / META_FILE).read_text())
        self.opened_s = time.perf_counter() - t0

    def _fill(self, tmp: Path) -> dict[str, Any]:
        """Decode every image into ``tmp``/images.npy, written as a stream (no memory map: written pages
        would count in this process's memory); the meta data. Samples read in place (an uncompressed .npz
        member) are only passed over for the meta data."""
        files = self.files
        shape = (files.n, *files.sample_shape)
        digests, acc = [], _ChannelStats(shape[1])
        t0 = time.perf_counter()
        if files.direct is not None:
            for _start, chunk in self._chunks():
                digests.extend(_digests(chunk))
                acc.add(chunk, files.divisor())
            return self._meta(digests, acc, time.perf_counter() - t0)
        with open(tmp / ARRAY_FILE, "wb") as fh:
            np.lib.format.write_array_header_2_0(fh, {"descr": np.lib.format.dtype_to_descr(files.dtype),
                                                      "fortran_order": False, "shape": shape})
            for _start, chunk in self._chunks():
                fh.write(np.ascontiguousarray(chunk).tobytes())
                digests.extend(_digests(chunk))
                acc.add(chunk, files.divisor())
            fh.flush()
            os.fsync(fh.fileno())
        return self._meta(digests, acc, time.perf_counter() - t0)

    # -- reading --------------------------------------------------------------------------------------
    def read(self, idx: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The stored pixels of samples ``idx`` (in that order): (len(idx), C, H, W)."""
        self.ensure()
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if self._array is not None:
            return self._array[idx]
        files = self.files
        out = np.empty((len(idx), *files.sample_shape), files.dtype) if out is None else out
        if self._fd is None:
            if files.direct is not None:
                path, self._offset = files.direct
            else:
                assert self.folder is not None
                path = self.folder / ARRAY_FILE
                with open(path, "rb") as fh:
                    np.lib.format.read_magic(fh)
                    np.lib.format.read_array_header_2_0(fh)
                    self._offset = fh.tell()
            self._fd = os.open(path, os.O_RDONLY)
        size = out[0].nbytes if len(out) else 0
        for k, i in enumerate(idx):
            view = memoryview(out[k]).cast("B")
            got = os.preadv(self._fd, [view], self._offset + int(i) * size)
            if got != size:
                raise BakeoffError(f"{self.folder}: the cache ends early (sample {int(i)}); expected a complete "
                                   f"cache: delete that folder (bakeoff clean) and run again")
        return out

    def digests(self) -> list[str]:
        self.ensure()
        assert self.meta is not None
        return list(self.meta["digests"])

    def info(self) -> dict[str, Any]:
        """What data_checks.json and the report say of the decoded data."""
        files = self.files
        out: dict[str, Any] = {"images": files.n, "stored": f"{files.dtype} {list(files.sample_shape)}",
                               "bytes": files.nbytes, "location": str(self.folder) if self.folder else "memory"}
        if files.direct is not None:
            out["read_in_place"] = str(files.direct[0])
        if self.meta is not None:
            out.update(decode_s=self.meta["decode_s"], built=self.meta["built"], open_s=round(self.opened_s, 3))
        return out


def _digests(chunk: np.ndarray) -> list[str]:
    return [hashlib.blake2b(np.ascontiguousarray(x).tobytes(), digest_size=16).hexdigest() for x in chunk]


class _ChannelStats:
    """Per-channel mean and standard deviation over every pixel of every image, accumulated chunk by chunk
    in float64 (sums of per-image means and squared deviations; Chan et al.'s pairwise update)."""

    def __init__(self, channels: int) -> None:
        self.n = 0
        self.mean = np.zeros(channels)
        self.m2 = np.zeros(channels)

    def add(self, chunk: np.ndarray, divisor: float) -> None:
        x = chunk.astype(np.float64) / divisor
        axes = (0, *range(2, x.ndim))
        nb = int(np.prod([x.shape[a] for a in axes]))
        mb = x.mean(axis=axes)
        m2b = ((x - mb.reshape(1, -1, *([1] * (x.ndim - 2)))) ** 2).sum(axis=axes)
        n = self.n + nb
        delta = mb - self.mean
        self.mean = self.mean + delta * nb / n
        self.m2 = self.m2 + m2b + delta ** 2 * self.n * nb / n
        self.n = n

    def result(self) -> tuple[list[float], list[float]]:
        return self.mean.tolist(), np.sqrt(self.m2 / max(self.n, 1)).tolist()


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n} B"


# -- what ArrayData.X holds for image sources ---------------------------------------------------------------
class LazyImages:
    """Samples of an ``ImageStore`` by position, read when asked: ``X[idx]`` is another view (no pixels
    read), ``np.asarray(X)`` the normalised float32 pixels, ``X.raw()`` the stored ones. What
    ``ArrayData.X`` holds for image files, so that code written for arrays indexes it the same way."""

    dtype = np.dtype(np.float32)

    def __init__(self, store: ImageStore, idx: np.ndarray | None = None, method: str = "none") -> None:
        self.store = store
        self.idx = np.arange(store.files.n) if idx is None else np.asarray(idx, np.int64)
        self.method = method  # data.normalize
        self._norm: Normalizer | None = None

    @property
    def norm(self) -> Normalizer:
        """The normalisation of a batch (``dataset`` statistics from the decoded store: read on first use)."""
        if self._norm is None:
            divisor = self.store.files.divisor()
            if self.method == "dataset":
                self.store.ensure()
                meta = self.store.meta or {}
                self._norm = Normalizer("dataset", divisor, tuple(meta["mean"]), tuple(meta["std"]))
            else:
                self._norm = Normalizer(self.method, divisor)
        return self._norm

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.idx), *self.store.files.sample_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.store.files.sample_shape)

    def __len__(self) -> int:
        return len(self.idx)

    @property
    def nbytes_stored(self) -> int:
        return int(len(self.idx) * np.prod(self.store.files.sample_shape) * self.store.files.dtype.itemsize)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, tuple):  # samples first, then within them (read and normalised)
            first = self[key[0]]
            return np.asarray(first)[key[1:]] if isinstance(key[0], (int, np.integer)) else \
                np.asarray(first)[(slice(None), *key[1:])]
        if isinstance(key, (int, np.integer)):
            return np.asarray(self[[int(key)]])[0]
        view = LazyImages(self.store, self.idx[key], self.method)
        view._norm = self._norm
        return view

    def raw(self) -> np.ndarray:
        return self.store.read(self.idx)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        import torch

        x = self.norm(torch.from_numpy(self.raw())).numpy()
        return x if dtype is None else x.astype(dtype, copy=False)

    def in_memory(self) -> bool:
        """Whether these samples are read into memory whole (else streamed by batch from the cache): when
        the whole dataset's stored pixels take at most ``IN_MEMORY_BYTES`` (the same answer for every part,
        so memory holds at most that much), unless ``data.in_memory`` says."""
        if self.store.in_memory is not None:
            return bool(self.store.in_memory)
        return self.store.root is None or self.store.files.nbytes <= IN_MEMORY_BYTES

    def fingerprint(self) -> str:
        """The files (path, size, modification time) and decode settings: what a decode depends on."""
        return self.store.files.key()


def cache_entries(root: Path) -> list[Path]:
    """The caches (and half-built ones) in ``root``."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and ((p / META_FILE).is_file() or p.name.endswith(".partial")))


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# -- what the study's context asks of any data ------------------------------------------------------------
def _stores(data: Any) -> list[Any]:
    """The decode stores a dataset reads from (image files of a sample source, or of a segmentation
    manifest); none for arrays in memory."""
    X = getattr(data, "X", None)
    if isinstance(X, LazyImages):
        return [X.store]
    return list(getattr(data, "stores", None) or [])


def attach_cache(data: Any, root: Path) -> None:
    """Decode ``data``'s image files into ``root`` (once, shared by every run and process): a store without a
    cache folder gets this one (pixels decoded into memory for the checks are dropped: small data)."""
    for store in _stores(data):
        if store.root is None:
            store.root = Path(root)
            store.forget()


def pixels_ready(data: Any) -> bool:
    """Whether the pixel checks may read every pixel now: arrays in memory, stores with a cache folder, or
    small ones (at most ``CHECK_DECODE_BYTES`` decoded: ``bakeoff check`` decodes them in memory)."""
    return all(s.ready or s.root is not None or s.files.nbytes <= CHECK_DECODE_BYTES for s in _stores(data))


def decoded_info(data: Any) -> dict[str, Any]:
    """Where and how the image files were decoded (data_checks.json's ``decoded``), decoding them if needed."""
    stores = _stores(data)
    for s in stores:
        s.ensure()
    if not stores:
        return {}
    return stores[0].info() if len(stores) == 1 else {"stores": [s.info() for s in stores]}


def cache_note(data: Any, cache_dir: str | None, out: Path | None) -> str:
    """What ``bakeoff check`` says of the decode, from headers and a decoded sample of 8 images per store:
    how large the cache will be and where it goes, or that it is there already; a disk that cannot hold it
    is refused now, before any decoding."""
    stores = _stores(data)
    if not stores:
        return ""
    for s in stores:
        s.files.sample_check()
    total = sum(s.files.nbytes for s in stores)
    n = sum(s.files.n for s in stores)
    root = Path(cache_dir).expanduser() if cache_dir else (Path(out) / CACHE_DIR if out is not None else None)
    what = f"{n:,} {stores[0].files.what} (a sample of {min(8, n)} per source decoded here)"
    if root is None:
        return (f"pixels: {what} decode to {_size(total)} when the study runs, once, into DIR/{CACHE_DIR} under "
                f"--out (or data.cache_dir)")
    missing = [s for s in stores if not (root / s.files.key() / META_FILE).is_file()]
    if not missing:
        return f"pixels: {what} already decoded in {root} ({_size(total)}); runs read them there"
    need = sum(s.files.nbytes for s in missing)
    free = shutil.disk_usage(nearest_existing(root)).free
    field = "data.cache_dir" if cache_dir else "--out"
    if free < need + (64 << 20):
        raise BakeoffError(f"{field} {root}: decoding {what.split(' (')[0]} needs {_size(need)}, and that disk has "
                           f"{_size(free)} free; expected room for the decoded images: free space there, or set "
                           f"data.cache_dir to a folder on a larger disk")
    return f"pixels: {what} decode to {_size(need)} in {root} when the study runs ({_size(free)} free there)"


def study_caches(out: Path) -> tuple[list[tuple[Path, str]], list[tuple[Path, str]]]:
    """The decoded-image folders in OUT/cache: (those of the study's current data, per its
    data_checks.json; the others: earlier files or settings, or a build a killed process left), each with
    its size in words."""
    root = Path(out) / CACHE_DIR
    checks = Path(out) / "data_checks.json"
    current: set[str] = set()
    if checks.is_file():
        decoded = json.loads(checks.read_text()).get("decoded") or {}
        for info in decoded.get("stores", [decoded]):
            if info.get("location"):
                current.add(Path(info["location"]).name)
    now, old = [], []
    for p in cache_entries(root):
        (now if p.name in current else old).append((p, _size(folder_size(p))))
    return now, old


# -- images with label masks (segmentation, particle picking) ----------------------------------------------
MASK_MODES = {"L": np.uint8, "P": np.uint8, "1": np.uint8, "I;16": np.uint16, "I;16B": np.uint16,
              "I;16L": np.uint16, "I": np.int32}


def read_mask_header(path: Path) -> tuple[tuple[int, int], np.dtype]:
    """(H, W) and dtype of a label image (one integer per pixel: PNG L/P/1/I;16/I or an integer TIFF)."""
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tf:
                shape, dtype = tuple(tf.series[0].shape), np.dtype(tf.series[0].dtype)
        else:
            from PIL import Image

            with Image.open(path) as im:
                if im.mode not in MASK_MODES:
                    raise BakeoffError(f"{path}: mask is a {im.mode} image; expected a label image with one integer "
                                       f"class label per pixel (8- or 16-bit greyscale or palette PNG, or an integer "
                                       f"TIFF): save the labels, not a coloured rendering")
                shape, dtype = (im.size[1], im.size[0]), np.dtype(MASK_MODES[im.mode])
    except BakeoffError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _unreadable(path, exc) from None
    if len(shape) != 2 or not (np.issubdtype(dtype, np.integer) or dtype == np.bool_):
        raise BakeoffError(f"{path}: mask has shape {shape} and dtype {dtype}; expected a 2D label image of integers")
    return (int(shape[0]), int(shape[1])), (np.dtype(np.uint8) if dtype == np.bool_ else dtype)


def decode_mask(path: Path) -> np.ndarray:
    """A label image's integers (H, W), never rescaled or cast to a narrower type."""
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            arr = np.asarray(tifffile.imread(path))
        else:
            from PIL import Image

            with Image.open(path) as im:
                arr = np.asarray(im)
    except Exception as exc:  # noqa: BLE001
        raise _unreadable(path, exc) from None
    return arr.astype(np.uint8) if arr.dtype == np.bool_ else arr


class PairFiles:
    """Images and their label masks, as listed by a manifest; headers read on demand. Images keep their
    own sizes (patches are sampled from them) and are converted to ``channels``."""

    def __init__(self, images: list[Path], masks: list[Path], channels: int | None, name: str) -> None:
        self.images, self.masks, self.channels, self.name = list(images), list(masks), channels, name
        self.paths = self.images
        self.n = len(self.images)
        self._heads: list[tuple[tuple[int, ...], np.dtype, tuple[int, int], np.dtype]] | None = None

    what = "image files"

    def heads(self) -> list[tuple[tuple[int, ...], np.dtype, tuple[int, int], np.dtype]]:
        """Per pair: the image's (C, H, W) as decoded and stored dtype, the mask's (H, W) and dtype; a mask
        whose size differs from its image's is refused here."""
        if self._heads is None:
            out = []
            imgs = _map(read_header, self.images)
            msks = _map(read_mask_header, self.masks)
            for (c, hw, dt), (mhw, mdt), ip, mp in zip(imgs, msks, self.images, self.masks):
                if tuple(mhw) != tuple(hw):
                    raise BakeoffError(f"{mp}: mask is {mhw[0]} x {mhw[1]} but its image {ip.name} is {hw[0]} x {hw[1]}; "
                                       f"expected a mask of the same size as its image")
                stored = dt if dt in (np.uint8, np.uint16) and not (self.channels == 1 and c == 3 and dt != np.uint8) \
                    else np.dtype(np.float32)
                out.append(((self.channels or c, *hw), np.dtype(stored), tuple(mhw), np.dtype(mdt)))
            channels = {h[0][0] for h in out}
            if len(channels) > 1:
                raise BakeoffError(f"{self.name}: images have {sorted(channels)} channels; expected the same number "
                                   f"for every image: set data.channels (1 or 3)")
            self._heads = out
        return self._heads

    @property
    def nbytes(self) -> int:
        return int(sum(np.prod(s) * d.itemsize + np.prod(ms) * md.itemsize for s, d, ms, md in self.heads()))

    def key(self) -> str:
        if getattr(self, "_key", None) is None:
            self._key = self._compute_key()
        return self._key

    def _compute_key(self) -> str:
        return stable_hash([CACHE_VERSION, "pairs", file_stats([*self.images, *self.masks]), self.channels])

    def decode(self, i: int, kind: str) -> np.ndarray:
        if kind == "mask":
            return decode_mask(self.masks[i])
        return decode(self.images[i], self.channels, None, self.heads()[i][1])

    def sample_check(self, n: int = 8) -> None:
        for i in spread(self.n, n):
            self.decode(i, "image")
            self.decode(i, "mask")


class PairStore:
    """The decoded images and masks of ``files``, one ``.npy`` each under the cache (read through a memory
    map opened for one read and closed after it); without a cache folder, each read decodes its file."""

    def __init__(self, files: PairFiles, root: Path | None = None) -> None:
        self.files, self.root = files, None if root is None else Path(root)
        self.meta: dict[str, Any] | None = None
        self.opened_s = 0.0

    @property
    def ready(self) -> bool:
        return self.meta is not None

    def forget(self) -> None:
        self.meta = None

    @property
    def folder(self) -> Path | None:
        return None if self.root is None else self.root / self.files.key()

    def ensure(self) -> None:
        if self.meta is not None or self.root is None:
            return
        t0 = time.perf_counter()
        assert self.folder is not None
        build_once(self.folder, self.files.nbytes, self.files.name, self._fill)
        self.meta = json.loads((self.folder / META_FILE).read_text())
        self.opened_s = time.perf_counter() - t0

    def _fill(self, tmp: Path) -> dict[str, Any]:
        files = self.files
        n = len(files.images)
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()
        say = Say(f"decoding {files.name}", n)
        t0 = time.perf_counter()

        def one(i: int) -> None:
            np.save(tmp / "images" / f"{i:06d}.npy", files.decode(i, "image"))
            np.save(tmp / "masks" / f"{i:06d}.npy", files.decode(i, "mask"))

        with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
            for start in range(0, n, 16):
                list(pool.map(one, range(start, min(n, start + 16))))
                kill_point("cache")
                say(min(n, start + 16))
        return {"version": CACHE_VERSION, "source": files.name, "n": n, "bytes": files.nbytes,
                "decode_s": round(time.perf_counter() - t0, 3), "channels": files.channels,
                "built": time.strftime("%Y-%m-%dT%H:%M:%S%z")}

    def read(self, i: int, kind: str, index: tuple[slice, ...] | None = None) -> np.ndarray:
        self.ensure()
        if self.root is None:
            arr = self.files.decode(i, kind)
            return arr if index is None else np.array(arr[index])
        assert self.folder is not None
        mm = np.load(self.folder / ("images" if kind == "image" else "masks") / f"{i:06d}.npy", mmap_mode="r")
        out = np.array(mm if index is None else mm[index])
        del mm  # unmapped now: pages read for this patch do not stay resident
        return out

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"images": len(self.files.images), "stored": "one .npy per image and mask",
                               "bytes": self.files.nbytes, "location": str(self.folder) if self.folder else "files"}
        if self.meta is not None:
            out.update(decode_s=self.meta["decode_s"], built=self.meta["built"], open_s=round(self.opened_s, 3))
        return out


class PairSource:
    """One image or mask of a ``PairStore``, as ``SegData`` reads its sources: ``shape``, ``dtype``,
    ``read(index)``."""

    def __init__(self, store: PairStore, i: int, kind: str) -> None:
        self.store, self.i, self.kind = store, i, kind
        files = store.files
        self.name = str((files.images if kind == "image" else files.masks)[i])
        shape, dtype, mshape, mdtype = files.heads()[i]
        self.shape, self.dtype = (tuple(shape), dtype) if kind == "image" else (tuple(mshape), mdtype)

    def read(self, index: tuple[slice, ...] | None = None) -> np.ndarray:
        return self.store.read(self.i, self.kind, index)
