"""Segmentation training throughput: a bakeoff run vs a hand-written PyTorch loop, side by side.

Same 2D MONAI U-Net, patch size, batch, optimizer (Adam 1e-3), number of steps, CPU (or GPU when
present). Both loops draw random patches from the same in-memory images each step and, after each
epoch, predict the validation images with MONAI's sliding window and score mean Dice. bakeoff also
writes its logs and best checkpoint, as in a study run. Prints patches/s and the ratio (target >= 0.95).

    python benchmarks/bench_seg_throughput.py [--patch 96] [--batch 8] [--iters 50] [--epochs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bakeoff.config import LossConfig, ProtocolConfig
from bakeoff.data.seg_builtin import make_organelles2d
from bakeoff.data.segdata import from_image_arrays
from bakeoff.models import create_model
from bakeoff.tasks import get_task
from bakeoff.tasks.segmentation import DenseSettings
from bakeoff.train.dense import fit_dense
from bakeoff.train.fit import seed_everything

PARAMS = {"channels": [16, 32, 64, 128], "strides": [2, 2, 2], "num_res_units": 1}


def _data(n: int, size: int):
    d = make_organelles2d(n=n, size=size, seed=0)
    data = from_image_arrays(d["images"], d["masks"], num_classes=6, class_names=d["class_names"])
    data.normalize = "zscore"
    data.check()
    return data


def _task():
    return get_task("semantic_segmentation", 6, DenseSettings([str(k) for k in range(6)], boundary=False))


def hand_written(data, train, val, patch, batch, iters, epochs, seed) -> float:
    from monai.inferers import sliding_window_inference

    seed_everything(seed)
    model = create_model("monai:UNet", in_channels=1, num_outputs=6, spatial_dims=2, input_shape=(patch, patch),
                         params=PARAMS)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = [torch.from_numpy(data.image(i)) for i in train]
    masks = [torch.from_numpy(data.mask(i)) for i in train]
    rng = np.random.default_rng(seed)
    task = _task()
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for _ in range(iters):
            xs, ys = [], []
            for _ in range(batch):
                j = int(rng.integers(len(images)))
                h, w = images[j].shape[1:]
                y0, x0 = int(rng.integers(h - patch + 1)), int(rng.integers(w - patch + 1))
                xs.append(images[j][:, y0:y0 + patch, x0:x0 + patch])
                ys.append(masks[j][y0:y0 + patch, x0:x0 + patch])
            x, y = torch.stack(xs), torch.stack(ys)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        model.eval()
        preds = []
        with torch.inference_mode():
            for i in val:
                logits = sliding_window_inference(torch.from_numpy(data.image(i))[None], (patch, patch), batch, model,
                                                  overlap=0.25, mode="gaussian")
                preds.append(logits.argmax(1)[0].numpy())
        _ = task.evaluate_part({"pred": preds, "y": [data.mask(i) for i in val]}, boundary=False)[0]["mean_dice"]
    return time.perf_counter() - t0


def with_bakeoff(data, train, val, patch, batch, iters, epochs, seed) -> float:
    protocol = ProtocolConfig(epochs=epochs, batch_size=batch, optimizer={"name": "adam", "lr": 1e-3},
                              patch_size=[patch, patch], iterations_per_epoch=iters, loss=LossConfig(name="ce"),
                              select={"monitor": "val/mean_dice", "mode": "max"}, deterministic=False)
    seed_everything(seed)
    model = create_model("monai:UNet", in_channels=1, num_outputs=6, spatial_dims=2, input_shape=(patch, patch),
                         params=PARAMS)
    with tempfile.TemporaryDirectory() as tmp:
        result = fit_dense(_task(), model, protocol, data, np.asarray(train), np.asarray(val), run_dir=Path(tmp),
                           seed=seed)
    return result.train_time_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patch", type=int, default=96)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", type=int, default=192)
    args = ap.parse_args()
    data = _data(12, args.size)
    train, val = list(range(10)), [10, 11]
    a = (data, train, val, args.patch, args.batch)
    with_bakeoff(*a, 2, 1, 0)  # warm-up
    hand_written(*a, 2, 1, 0)
    tb, th = [], []
    for r in range(args.repeats):  # interleaved, so drift in machine load hits both alike
        tb.append(with_bakeoff(*a, args.iters, args.epochs, r))
        th.append(hand_written(*a, args.iters, args.epochs, r))
    patches = args.iters * args.epochs * args.batch
    b, h = statistics.median(tb), statistics.median(th)
    print(f"2D MONAI UNet {PARAMS['channels']}, patch {args.patch}x{args.patch}, batch {args.batch}, "
          f"{args.iters} steps x {args.epochs} epochs, val {len(val)} images of {args.size}x{args.size}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    print(f"  hand-written loop : {patches / h:8.1f} patches/s ({h:.2f} s)")
    print(f"  bakeoff           : {patches / b:8.1f} patches/s ({b:.2f} s)")
    print(f"  ratio bakeoff / hand-written = {h / b:.3f} (target >= 0.95)")


if __name__ == "__main__":
    main()
