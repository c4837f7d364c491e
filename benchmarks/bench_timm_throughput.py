"""Training throughput of a timm backbone: a bakeoff run vs a hand-written PyTorch loop, side by side.

Same timm model, images (random 3-channel, in memory), batch, optimizer (Adam 1e-3), precision and epochs,
on CUDA when present (else CPU). Both loops shuffle, train, and score the validation images each epoch
(macro F1 for the hand loop; bakeoff's full metric set, logs and selected checkpoint). The hand loop is
the careful one: tensors on the device once, autocast at the chosen precision (and a gradient scaler for
16-mixed). Prints the whole-run and marginal-epoch
ratios: median, 95 % interval and range over 15 pairs (target >= 0.95).

    python benchmarks/bench_timm_throughput.py [--model resnet18] [--size 64] [--n 512] [--precision 32-true]
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

from bakeoff.config import ProtocolConfig
from bakeoff.models import create_model
from bakeoff.tasks import get_task
from bakeoff.train.fit import fit, seed_everything

K = 5


def _autocast(device, precision):
    if precision.endswith("-mixed"):
        dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float16
        return torch.autocast(device.type, dtype=dtype)
    return contextlib.nullcontext()


@plain_torch()
def hand_written(Xt, yt, Xv, yv, model_name, size, epochs, batch, seed, device, precision) -> float:
    seed_everything(max(seed, 0))
    model = create_model(f"timm:{model_name}", in_channels=3, num_outputs=K, spatial_dims=2, input_shape=(size, size))
    t0 = time.perf_counter()
    model.to(device)
    opt = fast_adam(model.parameters()) if not (precision == "16-mixed") else torch.optim.Adam(
        model.parameters(), lr=1e-3, foreach=True)  # bakeoff's choice too: a scaler must unscale first
    best: dict = {}
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "16-mixed")
    Xt_t, yt_t, Xv_t = (torch.from_numpy(a).to(device) for a in (Xt, yt, Xv))
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(Xt_t), device=device)
        for i in range(0, len(perm), batch):
            idx = perm[i:i + batch]
            opt.zero_grad(set_to_none=True)
            with _autocast(device, precision):
                loss = F.cross_entropy(model(Xt_t[idx]), yt_t[idx])
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        model.eval()
        with torch.inference_mode(), _autocast(device, precision):
            probs = torch.cat([model(Xv_t[i:i + 256]).float().softmax(1) for i in range(0, len(Xv_t), 256)])
        keep_best(model, get_task("multiclass_classification", K).metrics(yv, probs.cpu().numpy())["f1"], best)
    save_best(best)
    sync(device)
    return time.perf_counter() - t0


def with_bakeoff(Xt, yt, Xv, yv, model_name, size, epochs, batch, seed, device, precision, deterministic="auto") -> float:
    protocol = ProtocolConfig(epochs=epochs, batch_size=batch, optimizer={"name": "adam", "lr": 1e-3},
                              loss={"name": "ce"}, select={"monitor": "val/f1", "mode": "max"}, precision=precision,
                              accelerator="gpu" if device.type == "cuda" else "cpu", deterministic=deterministic)
    seed_everything(max(seed, 0))
    model = create_model(f"timm:{model_name}", in_channels=3, num_outputs=K, spatial_dims=2, input_shape=(size, size))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        fit(get_task("multiclass_classification", K), model, protocol, Xt, yt, Xv, yv, run_dir=Path(tmp))
        sync(device)
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--epochs", type=int, nargs=2, default=[1, 3])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--all", action="store_true", help="also bakeoff without its determinism policy")
    ap.add_argument("--precision", default="32-true", choices=["32-true", "16-mixed", "bf16-mixed"])
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = pick_device(args.device)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.n + 128, 3, args.size, args.size)).astype(np.float32)
    y = rng.integers(0, K, len(X))
    a = (X[:args.n], y[:args.n], X[args.n:], y[args.n:], args.model, args.size)
    k = dict(batch=args.batch, device=device, precision=args.precision)
    title = (f"timm:{args.model}, {args.size}x{args.size}, batch {args.batch}, {args.n} images, {args.precision}, "
          f"{describe(device)}")
    loops = {"hand-written, fused Adam": lambda e, r: hand_written(*a, e, seed=r, **k),
             "bakeoff": lambda e, r: with_bakeoff(*a, e, seed=r, **k)}
    if args.all:  # the hand loop's PyTorch defaults: what bakeoff's determinism policy costs, apart from its loop
        loops["bakeoff, deterministic: false"] = lambda e, r: with_bakeoff(*a, e, seed=r, deterministic=False, **k)
    compare(loops, "hand-written, fused Adam", tuple(args.epochs), args.repeats, args.n, "images", title)


if __name__ == "__main__":
    main()
