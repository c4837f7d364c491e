"""Segmentation training throughput: a bakeoff run vs a hand-written PyTorch loop, side by side.

Same 2D MONAI U-Net, patch size, batch, optimizer (Adam 1e-3), precision, number of steps, on CUDA when
present (else CPU). Both loops draw random patches from the same images each step and, after each
epoch, predict the validation images with MONAI's sliding window and score mean Dice. bakeoff also
writes its logs and selected checkpoint, as in a study run. Prints the whole-run and marginal-epoch
ratios: median, 95 % interval and range over 15 pairs (target >= 0.95).

    python benchmarks/bench_seg_throughput.py [--patch 96] [--batch 8] [--iters 50] [--precision 32-true]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sidebyside import compare, describe, fast_adam, keep_best, pick_device, plain_torch, save_best, sync

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


def _autocast(device, precision):
    if precision.endswith("-mixed"):
        return torch.autocast(device.type, dtype=torch.bfloat16 if precision.startswith("bf16") else torch.float16)
    return contextlib.nullcontext()


def _model(patch):
    return create_model("monai:UNet", in_channels=1, num_outputs=6, spatial_dims=2, input_shape=(patch, patch),
                        params=PARAMS)


@plain_torch()
def hand_written(data, train, val, patch, batch, iters, epochs, seed, device, precision) -> float:
    from monai.inferers import sliding_window_inference

    seed_everything(max(seed, 0))
    model = _model(patch)
    t0 = time.perf_counter()
    model.to(device)
    opt = fast_adam(model.parameters()) if not (precision == "16-mixed") else torch.optim.Adam(
        model.parameters(), lr=1e-3, foreach=True)  # bakeoff's choice too: a scaler must unscale first
    best: dict = {}
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "16-mixed")
    images = [torch.from_numpy(data.image(i)) for i in train]
    masks = [torch.from_numpy(data.mask(i)) for i in train]
    rng = np.random.default_rng(max(seed, 0))
    task = _task()
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
            x, y = torch.stack(xs).to(device, non_blocking=True), torch.stack(ys).to(device, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            with _autocast(device, precision):
                loss = F.cross_entropy(model(x), y.long())
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        model.eval()
        preds = []
        with torch.inference_mode(), _autocast(device, precision):
            for i in val:
                logits = sliding_window_inference(torch.from_numpy(data.image(i))[None].to(device), (patch, patch),
                                                  batch, model, overlap=0.25, mode="gaussian")
                preds.append(logits.argmax(1)[0].cpu().numpy())
        keep_best(model, task.evaluate_part({"pred": preds, "y": [data.mask(i) for i in val]},
                                            boundary=False)[0]["mean_dice"], best)
    save_best(best)
    sync(device)
    return time.perf_counter() - t0


def with_bakeoff(data, train, val, patch, batch, iters, epochs, seed, device, precision, deterministic="auto") -> float:
    protocol = ProtocolConfig(epochs=epochs, batch_size=batch, optimizer={"name": "adam", "lr": 1e-3},
                              patch_size=[patch, patch], iterations_per_epoch=iters, loss=LossConfig(name="ce"),
                              select={"monitor": "val/mean_dice", "mode": "max"}, precision=precision,
                              accelerator="gpu" if device.type == "cuda" else "cpu", deterministic=deterministic)
    seed_everything(max(seed, 0))
    model = _model(patch)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        fit_dense(_task(), model, protocol, data, np.asarray(train), np.asarray(val), run_dir=Path(tmp),
                  seed=max(seed, 0))
        sync(device)
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patch", type=int, default=96)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--epochs", type=int, nargs=2, default=[1, 3])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--all", action="store_true", help="also bakeoff without its determinism policy")
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--precision", default="32-true", choices=["32-true", "16-mixed", "bf16-mixed"])
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = pick_device(args.device)
    data = _data(12, args.size)
    train, val = list(range(10)), [10, 11]
    a = (data, train, val, args.patch, args.batch, args.iters)
    k = dict(device=device, precision=args.precision)
    title = (f"2D MONAI UNet {PARAMS['channels']}, patch {args.patch}x{args.patch}, batch {args.batch}, "
          f"{args.iters} steps per epoch, val {len(val)} images of {args.size}x{args.size}, {args.precision}, "
          f"{describe(device)}")
    loops = {"hand-written, fused Adam": lambda e, r: hand_written(*a, e, seed=r, **k),
             "bakeoff": lambda e, r: with_bakeoff(*a, e, seed=r, **k)}
    if args.all:  # the hand loop's PyTorch defaults: what bakeoff's determinism policy costs, apart from its loop
        loops["bakeoff, deterministic: false"] = lambda e, r: with_bakeoff(*a, e, seed=r, deterministic=False, **k)
    compare(loops, "hand-written, fused Adam", tuple(args.epochs), args.repeats, args.iters * args.batch, "patches",
            title)


if __name__ == "__main__":
    main()
