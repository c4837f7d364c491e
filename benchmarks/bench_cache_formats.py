"""How to keep decoded images on disk: the formats a per-sample random-access reader could use, measured.

N samples of 3 x 384 x 384 uint8 (what decoded 384-px RGB images are) are written once per format, then
read in shuffled batches of 32, as a training epoch reads them, each format in its own fresh process:
  * ``npy+pread`` (what bakeoff's cache does): one .npy file, each sample one ``os.preadv`` into a buffer;
  * ``npy+memmap``: the same file through ``np.load(mmap_mode="r")`` and fancy indexing;
  * ``zarr`` (if installed): chunks of one sample, uncompressed and with zarr's default compressor.
Printed per format: write time, the epoch's read time (images/s), and the reader's peak RSS after the
epoch, and its growth over the process's RSS before reading (pages of a memory map a process has touched
count in its RSS; bytes read into a buffer do not).

    python benchmarks/bench_cache_formats.py [--n 2000] [--workdir /tmp/bakeoff-formats]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SHAPE = (3, 384, 384)

READ = r"""
import json, os, sys, time
import numpy as np
kind, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
shape = (3, 384, 384)
order = np.random.default_rng(0).permutation(n)
def rss_mb(field="VmRSS"):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field)) / 1024
if kind == "npy+pread":
    fd = os.open(path, os.O_RDONLY)
    with open(path, "rb") as fh:
        np.lib.format.read_magic(fh); np.lib.format.read_array_header_2_0(fh); off = fh.tell()
    size = int(np.prod(shape))
    def batch(idx):
        out = np.empty((len(idx), *shape), np.uint8)
        for k, i in enumerate(idx):
            os.preadv(fd, [memoryview(out[k]).cast("B")], off + int(i) * size)
        return out
elif kind == "npy+memmap":
    mm = np.load(path, mmap_mode="r")
    def batch(idx):
        return np.asarray(mm[np.sort(idx)])
else:
    import zarr
    z = zarr.open_array(path, mode="r")
    def batch(idx):
        return z.get_orthogonal_selection((np.sort(idx), slice(None), slice(None), slice(None)))
before = rss_mb()
t = time.perf_counter()
total = 0
for s in range(0, n, 32):
    total += int(batch(order[s:s + 32])[:, 0, 0, 0].sum())
dt = time.perf_counter() - t
print(json.dumps({"read_s": dt, "rss_before_mb": before, "rss_after_mb": rss_mb(),
                  "peak_mb": rss_mb("VmHWM")}))  # (ru_maxrss would carry the parent's over exec)
"""


def write(kind: str, path: Path, n: int) -> float:
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    if kind.startswith("npy"):
        with open(path, "wb") as fh:
            np.lib.format.write_array_header_2_0(fh, {"descr": "|u1", "fortran_order": False, "shape": (n, *SHAPE)})
            for s in range(0, n, 64):
                fh.write(rng.integers(0, 256, (min(n, s + 64) - s, *SHAPE), dtype=np.uint8).tobytes())
    else:
        import zarr

        kw = {"compressors": None} if kind == "zarr" else {}
        z = zarr.create_array(str(path), shape=(n, *SHAPE), chunks=(1, *SHAPE), dtype="uint8", **kw)
        for s in range(0, n, 64):
            z[s:min(n, s + 64)] = rng.integers(0, 256, (min(n, s + 64) - s, *SHAPE), dtype=np.uint8)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bakeoff-formats"))
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    kinds = ["npy+pread", "npy+memmap"]
    if importlib.util.find_spec("zarr") is not None:
        kinds += ["zarr", "zarr+zstd"]
    print(f"{args.n:,} samples of {SHAPE} uint8 ({args.n * int(np.prod(SHAPE)) / 1e9:.2f} GB), shuffled batches of 32")
    npy = args.workdir / "x.npy"
    written = {"npy": write("npy", npy, args.n)}
    for kind in kinds:
        path = npy if kind.startswith("npy") else args.workdir / f"{kind}.zarr"
        w = written["npy"] if kind.startswith("npy") else write(kind, path, args.n)
        # page cache warm for every format alike: one read pass before the measured one
        subprocess.run(["cat", str(path)] if path.is_file() else ["true"], capture_output=True)
        out = json.loads(subprocess.run([sys.executable, "-c", READ, kind, str(path), str(args.n)],
                                        capture_output=True, text=True, check=True).stdout)
        print(f"  {kind:11s} write {w:5.1f} s  read {args.n / out['read_s']:7.0f} images/s  RSS after the epoch "
              f"{out['rss_after_mb']:6.0f} MB (+{out['rss_after_mb'] - out['rss_before_mb']:.0f} MB), peak "
              f"{out['peak_mb']:.0f} MB", flush=True)
        if not kind.startswith("npy"):
            shutil.rmtree(path, ignore_errors=True)
    npy.unlink()


if __name__ == "__main__":
    main()
