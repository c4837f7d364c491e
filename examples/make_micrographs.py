"""Write the built-in cryo-EM generator's micrographs as 8-bit PNG files with PNG label masks and a
manifest CSV: the layout in which picking data often arrive (a folder of micrographs, a folder of masks).

    python examples/make_micrographs.py [OUT_DIR] [N] [SIZE]   (default: examples/micrographs 40 96)

OUT_DIR/micrographs.csv has columns image,mask,fold,split: 20% of the micrographs are the test set
(split = test), the others spread over 4 folds (split = train). Each micrograph is scaled to 0..255 by
its own range; its mask holds 0 (ice) and 1 (particle).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from bakeoff.data.seg_builtin import make_cryoem2d


def main(out: Path, n: int = 40, size: int = 96) -> Path:
    d = make_cryoem2d(n=n, size=size, radius=5.0, particles=8, snr=1.5, seed=0)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    rows = []
    test = set(np.random.default_rng(0).permutation(n)[: max(1, n // 5)].tolist())
    fold = 0
    for i, (img, mask) in enumerate(zip(d["images"], d["masks"])):
        lo, hi = float(img.min()), float(img.max())
        pixels = np.round((img - lo) / max(hi - lo, 1e-8) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(out / "images" / f"mic{i:04d}.png")
        Image.fromarray(mask.astype(np.uint8)).save(out / "masks" / f"mic{i:04d}.png")
        if i in test:
            rows.append({"image": f"images/mic{i:04d}.png", "mask": f"masks/mic{i:04d}.png", "fold": -1, "split": "test"})
        else:
            rows.append({"image": f"images/mic{i:04d}.png", "mask": f"masks/mic{i:04d}.png", "fold": fold % 4,
                         "split": "train"})
            fold += 1
    manifest = out / "micrographs.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.DictWriter(f, ["image", "mask", "fold", "split"])
        w.writeheader()
        w.writerows(rows)
    return manifest


if __name__ == "__main__":
    args = sys.argv[1:]
    path = main(Path(args[0]) if args else Path(__file__).resolve().parent / "micrographs",
                *(int(a) for a in args[1:3]))
    print(f"wrote {path}")
