"""Data loading vs training step for 2D classification from PNG files (timm:resnet18, 224 x 224, CPU).

bakeoff decodes a csv:/folder: dataset once per study (Pillow, parallel threads) into its stored dtype
(uint8 here) and serves batches from memory (small data) or from the on-disk cache (large data; see
bench_data_scale.py), normalised per batch. This prints, side by side in one process:
  * decoding: PNG files -> resized uint8 arrays, images/s (the one-off cost per study),
  * the training loader: in-memory uint8 batches normalised as the training loop receives them, images/s,
  * the training step alone (forward + backward + Adam) on the same batches, images/s,
and the ratio loader / step (target >= 2: loading must not starve training).

    python benchmarks/bench_image_loading.py [--n 512] [--size 224] [--batch 32] [--steps 6]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from bakeoff.data.images import lazy_images
from bakeoff.models import create_model
from bakeoff.train.data import ArrayBatches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=6)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(args.n):  # 256 x 256 RGB photographs-like noise with structure, resized to --size
            base = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            img = Image.fromarray(base).resize((256, 256), Image.BICUBIC)
            p = Path(tmp) / f"{i:05d}.png"
            img.save(p)
            paths.append(p)
        t0 = time.perf_counter()
        images = lazy_images(paths, 3, (args.size, args.size), "bench")
        images.method = "imagenet"
        images.store.ensure()  # decoded into memory (no cache folder)
        decode = args.n / (time.perf_counter() - t0)
        X = np.asarray(images)  # the normalised float32 inputs, for the step alone
    y = rng.integers(0, 5, args.n)
    loader = ArrayBatches(images, y, args.batch, shuffle=True, seed=0)
    t0 = time.perf_counter()
    seen = 0
    for _ in range(3):
        for xb, _yb in loader:
            seen += len(xb)
    load = seen / (time.perf_counter() - t0)
    model = create_model("timm:resnet18", in_channels=3, num_outputs=5, spatial_dims=2,
                         input_shape=(args.size, args.size))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    batches = [(torch.from_numpy(X[i:i + args.batch]), torch.from_numpy(y[i:i + args.batch]))
               for i in range(0, args.batch * (args.steps + 1), args.batch)]
    model.train()
    for xb, yb in batches[:1]:  # warm-up
        F.cross_entropy(model(xb), yb).backward()
    t0 = time.perf_counter()
    for xb, yb in batches[1:]:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
    step = args.steps * args.batch / (time.perf_counter() - t0)
    print(f"timm:resnet18, {args.size}x{args.size} RGB from {args.n} PNG files, batch {args.batch}, "
          f"{torch.get_num_threads()} threads")
    print(f"  decoding PNG -> arrays (once per study) : {decode:9.1f} images/s")
    print(f"  training loader (in-memory batches)     : {load:9.1f} images/s")
    print(f"  training step alone                      : {step:9.1f} images/s")
    print(f"  ratio loader / step = {load / step:.1f} (target >= 2); decoding / step = {decode / step:.1f}")


if __name__ == "__main__":
    main()
