"""Training throughput of a timm backbone: a bakeoff run vs a hand-written PyTorch loop, side by side.

Same timm model, images (random 3-channel, in memory), batch, optimizer (Adam 1e-3), epochs, CPU. Both
loops shuffle, train, and score the validation images each epoch (macro F1 for the hand loop; bakeoff's
full metric set, logs and best checkpoint). Prints images/s and the ratio (target >= 0.95).

    python benchmarks/bench_timm_throughput.py [--model resnet18] [--size 64] [--n 512] [--epochs 3]
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

from bakeoff.config import ProtocolConfig
from bakeoff.models import create_model
from bakeoff.tasks import get_task
from bakeoff.train.fit import fit, seed_everything

K = 5


def hand_written(Xt, yt, Xv, yv, model_name, size, epochs, batch, seed) -> float:
    seed_everything(seed)
    model = create_model(f"timm:{model_name}", in_channels=3, num_outputs=K, spatial_dims=2, input_shape=(size, size))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    Xt_t, yt_t, Xv_t = torch.from_numpy(Xt), torch.from_numpy(yt), torch.from_numpy(Xv)
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(Xt_t))
        for i in range(0, len(perm), batch):
            idx = perm[i:i + batch]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(Xt_t[idx]), yt_t[idx]).backward()
            opt.step()
        model.eval()
        with torch.inference_mode():
            probs = torch.cat([model(Xv_t[i:i + 256]).softmax(1) for i in range(0, len(Xv_t), 256)])
        _ = get_task("multiclass_classification", K).metrics(yv, probs.numpy())["f1"]
    return time.perf_counter() - t0


def with_bakeoff(Xt, yt, Xv, yv, model_name, size, epochs, batch, seed) -> float:
    protocol = ProtocolConfig(epochs=epochs, batch_size=batch, optimizer={"name": "adam", "lr": 1e-3},
                              loss={"name": "ce"}, select={"monitor": "val/f1", "mode": "max"}, deterministic=False)
    seed_everything(seed)
    model = create_model(f"timm:{model_name}", in_channels=3, num_outputs=K, spatial_dims=2, input_shape=(size, size))
    with tempfile.TemporaryDirectory() as tmp:
        return fit(get_task("multiclass_classification", K), model, protocol, Xt, yt, Xv, yv,
                   run_dir=Path(tmp)).train_time_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.n + 128, 3, args.size, args.size)).astype(np.float32)
    y = rng.integers(0, K, len(X))
    a = (X[:args.n], y[:args.n], X[args.n:], y[args.n:], args.model, args.size)
    with_bakeoff(*a, 1, args.batch, 0)  # warm-up
    hand_written(*a, 1, args.batch, 0)
    tb, th = [], []
    for r in range(args.repeats):
        tb.append(with_bakeoff(*a, args.epochs, args.batch, r))
        th.append(hand_written(*a, args.epochs, args.batch, r))
    imgs = args.n * args.epochs
    b, h = statistics.median(tb), statistics.median(th)
    print(f"timm:{args.model}, {args.size}x{args.size}, batch {args.batch}, {args.n} images x {args.epochs} epochs, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    print(f"  hand-written loop : {imgs / h:8.1f} images/s ({h:.2f} s)")
    print(f"  bakeoff           : {imgs / b:8.1f} images/s ({b:.2f} s)")
    print(f"  ratio bakeoff / hand-written = {h / b:.3f} (target >= 0.95)")


if __name__ == "__main__":
    main()
