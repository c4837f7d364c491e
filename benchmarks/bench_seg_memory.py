"""Peak memory does not grow with the dataset: training from a large on-disk npz_dir vs a small one.

Writes two npz_dir datasets of identical images (uncompressed .npz, float32 image + uint8 mask per
file; default 4 GB and 100 MB), then trains the same 2D U-Net on each in a fresh process (same patch
size, batch, steps; one validation image) and prints each dataset's size on disk and the process's
peak resident memory (ru_maxrss). Target: large-data peak within 300 MB of the small-data peak.

    python benchmarks/bench_seg_memory.py [--large-gb 4] [--small-mb 100] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

H, W = 2048, 2048  # 16 MiB float32 image + 4 MiB mask per file

CHILD = r"""
import json, resource, sys, tempfile
from pathlib import Path
import numpy as np
from bakeoff.config import LossConfig, ProtocolConfig
from bakeoff.data.segdata import load_dense_source
from bakeoff.models import create_model
from bakeoff.tasks import get_task
from bakeoff.tasks.segmentation import DenseSettings
from bakeoff.train.dense import fit_dense

root, patch, batch, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
data = load_dense_source(f"npz_dir:{root}", None, spatial_dims=2, num_classes=3, spacing=None, normalize="zscore")
after_scan = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
train, val = np.flatnonzero(data.parts == "train"), np.flatnonzero(data.parts == "val")
task = get_task("semantic_segmentation", 3, DenseSettings(["a", "b", "c"], boundary=False))
protocol = ProtocolConfig(epochs=1, batch_size=batch, patch_size=[patch, patch], iterations_per_epoch=iters,
                          loss=LossConfig(name="ce"), select={"monitor": "val/mean_dice", "mode": "max"},
                          deterministic=False, sliding_window_overlap=0.0)
model = create_model("monai:UNet", in_channels=1, num_outputs=3, spatial_dims=2, input_shape=(patch, patch),
                     params={"channels": [16, 32, 64], "strides": [2, 2]})
with tempfile.TemporaryDirectory() as tmp:
    fit_dense(task, model, protocol, data, train, val, run_dir=Path(tmp), seed=0)
print(json.dumps({"images": len(data), "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "peak_after_scan_mb": after_scan}))
"""


def write_dataset(root: Path, total_bytes: float) -> float:
    rng = np.random.default_rng(0)
    per_file = H * W * 5
    n_train = max(1, int(round(total_bytes / per_file)) - 1)
    mask = np.zeros((H, W), np.uint8)
    yy, xx = np.mgrid[:H, :W]
    mask[(yy // 64 + xx // 64) % 3 == 1] = 1
    mask[(yy // 64 + xx // 64) % 3 == 2] = 2
    image = (mask * 1.0 + rng.normal(size=(H, W))).astype(np.float32)
    for part, n in (("train", n_train), ("val", 1)):
        (root / part).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            np.savez(root / part / f"img{i:04d}.npz", image=image, mask=mask)
    return sum(f.stat().st_size for f in root.rglob("*.npz"))


def measure(root: Path, patch: int, batch: int, iters: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(root), str(patch), str(batch), str(iters)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--large-gb", type=float, default=4.0)
    ap.add_argument("--small-mb", type=float, default=100.0)
    ap.add_argument("--patch", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--keep", type=Path, default=None, help="write the datasets here and keep them")
    args = ap.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="bakeoff-mem-"))
    try:
        rows = []
        for label, size in (("small", args.small_mb * 2**20), ("large", args.large_gb * 2**30)):
            root = base / label
            on_disk = write_dataset(root, size) if not root.exists() else sum(f.stat().st_size for f in root.rglob("*.npz"))
            r = measure(root, args.patch, args.batch, args.iters)
            rows.append((label, on_disk, r))
            print(f"{label:5s}: {on_disk / 2**20:9.0f} MiB on disk, {r['images']:4d} images of {H}x{W}: "
                  f"peak RSS {r['peak_mb']:7.0f} MiB (after the one-pass data check: {r['peak_after_scan_mb']:.0f} MiB)")
        diff = rows[1][2]["peak_mb"] - rows[0][2]["peak_mb"]
        print(f"peak difference large - small = {diff:+.0f} MiB (target within 300 MB); patch {args.patch}, "
              f"batch {args.batch}, {args.iters} steps")
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
