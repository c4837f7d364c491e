"""Where a bakeoff run's time goes against the hand-written loop: a diagnosis, not a benchmark.

For the timm and the segmentation workloads of ``bench_timm_throughput.py`` / ``bench_seg_throughput.py``:
1. times (after a warm-up) the hand loop, bakeoff, and bakeoff with one fast-path switch changed at a time
   (channels-last off, determinism off), so that each switch's cost shows on its own;
2. counts the host-device synchronisations in one bakeoff run (``torch.cuda.set_sync_debug_mode``) by the
   Python line that caused them;
3. prints the top operators of one bakeoff run and one hand loop by self CPU and self device time
   (``torch.profiler``).

    python benchmarks/profile_gpu.py timm [--epochs 2]     # on a GPU; runs on CPU too (no sync counts)
"""

from __future__ import annotations

import argparse
import collections
import time
import warnings

import numpy as np
import torch
from sidebyside import describe, pick_device, reset, sync

import bakeoff.train.loop as loop


def _workload(name: str, device: torch.device, quick: bool):
    if name == "timm":
        import bench_timm_throughput as b

        n, size = (256, 64) if quick else (2048, 160)
        rng = np.random.default_rng(0)
        X = rng.normal(size=(n + 128, 3, size, size)).astype(np.float32)
        y = rng.integers(0, b.K, len(X))
        a = (X[:n], y[:n], X[n:], y[n:], "resnet18", size)
        k = dict(batch=64, device=device, precision="bf16-mixed" if device.type == "cuda" else "32-true")
    else:
        import bench_seg_throughput as b

        patch, size = (64, 128) if quick else (128, 256)
        data = b._data(12, size)
        a = (data, list(range(10)), [10, 11], patch, 16 if not quick else 4, 60 if not quick else 6)
        k = dict(device=device, precision="16-mixed" if device.type == "cuda" else "32-true")
    return (lambda e, **kw: b.hand_written(*a, e, seed=0, **k)), (lambda e, **kw: b.with_bakeoff(*a, e, seed=0, **k, **kw))


def _timed(label: str, fn, epochs: int) -> float:
    reset()
    t = fn(epochs)
    print(f"  {label:<44s} {t:7.3f} s")
    return t


def _syncs(fn, epochs: int, device: torch.device) -> None:
    if device.type != "cuda":
        print("  (no CUDA: synchronisations not counted)")
        return
    reset()
    where: collections.Counter = collections.Counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode(1)
        try:
            fn(epochs)
        finally:
            torch.cuda.set_sync_debug_mode(0)
    for w in caught:
        if "synchroniz" in str(w.message).lower():
            where[f"{w.filename.split('site-packages/')[-1].split('src/')[-1]}:{w.lineno}"] += 1
    print(f"  {sum(where.values())} synchronising calls; by line:")
    for k, v in where.most_common(15):
        print(f"    {v:6d}  {k}")


def _profile(label: str, fn, epochs: int, device: torch.device) -> None:
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    reset()
    with profile(activities=acts) as prof:
        fn(epochs)
        sync(device)
    avg = prof.key_averages()
    print(f"  {label}: top by self CPU time")
    for e in sorted(avg, key=lambda e: -e.self_cpu_time_total)[:14]:
        print(f"    {e.self_cpu_time_total / 1e3:9.1f} ms  {e.count:7d}x  {e.key[:70]}")
    if device.type == "cuda":
        print(f"  {label}: top by self device time")
        for e in sorted(avg, key=lambda e: -getattr(e, "self_device_time_total", 0))[:12]:
            print(f"    {getattr(e, 'self_device_time_total', 0) / 1e3:9.1f} ms  {e.count:7d}x  {e.key[:70]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workload", choices=["timm", "seg"])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (to try the script on a CPU)")
    ap.add_argument("--no-profile", action="store_true")
    args = ap.parse_args()
    device = pick_device("auto")
    hand, bake = _workload(args.workload, device, args.quick or device.type == "cpu")
    print(f"{args.workload}: {describe(device)}, {args.epochs} epochs")
    hand(1), bake(1)  # warm-up
    _timed("hand-written loop", hand, args.epochs)
    _timed("bakeoff", bake, args.epochs)
    _timed("bakeoff, deterministic: false", lambda e: bake(e, deterministic=False), args.epochs)
    real = loop._is_2d_conv
    loop._is_2d_conv = lambda m: False
    try:
        _timed("bakeoff, channels-last off", bake, args.epochs)
        _timed("bakeoff, channels-last off, deterministic: false", lambda e: bake(e, deterministic=False), args.epochs)
    finally:
        loop._is_2d_conv = real
    t0 = time.perf_counter()
    _syncs(bake, args.epochs, device)
    print(f"  (sync count run {time.perf_counter() - t0:.1f} s)")
    if not args.no_profile:
        _profile("bakeoff", bake, args.epochs, device)
        _profile("hand-written loop", hand, args.epochs, device)


if __name__ == "__main__":
    main()
