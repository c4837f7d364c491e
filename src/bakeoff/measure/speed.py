"""Inference latency and throughput: warm-up, then the median of repeated timed batches, the device
synchronised around each (timm's benchmark method)."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn as nn


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def measure_inference(model: nn.Module, example: torch.Tensor, batch_size: int = 32, repeats: int = 10,
                      warmup: int = 3, forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
                      ) -> dict[str, float]:
    """Per-sample latency at batch 1 and throughput at ``batch_size``, both as medians over ``repeats``;
    ``forward`` (default: the model) is what is timed, e.g. the network at the run's precision."""
    model.eval()
    others = _OtherCpu()
    p = next(model.parameters())
    device = p.device
    example = example.to(p.dtype) if p.is_floating_point() else example
    forward = forward or model
    results = {}
    for label, bs in (("latency", 1), ("throughput", batch_size)):
        reps = max(1, -(-bs // len(example)))
        x = example.repeat(reps, *([1] * (example.ndim - 1)))[:bs].to(device)
        for _ in range(warmup):
            forward(x)
        _sync(device)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            forward(x)
            _sync(device)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        if label == "latency":
            results["latency_ms"] = med * 1e3
            if len(times) >= 4:  # how much the repeats disagree: the interquartile range over the median
                q1, _, q3 = statistics.quantiles(times, n=4)
                results["latency_spread"] = (q3 - q1) / med if med > 0 else 0.0
        else:
            results["throughput_per_s"] = bs / med
            results["batch_latency_ms"] = med * 1e3
    results["speed_batch_size"] = batch_size
    share = others.share()
    if share is not None:  # other work on the machine while timing
        results["others_cpu_share"] = share
    elif hasattr(os, "getloadavg"):  # (no /proc/stat: the 1-minute load, which also counts this run's training)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        results["load_per_core"] = os.getloadavg()[0] / max(cores, 1)
    results["flops_per_sample"] = count_flops(forward, example[:1].to(device))
    return results


def _busy_jiffies() -> tuple[int, int] | None:
    """(busy clock ticks over every CPU, the number of CPUs) from Linux's /proc/stat; None elsewhere."""
    try:
        with open("/proc/stat") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    vals = [int(v) for v in lines[0].split()[1:9]]  # user nice system idle iowait irq softirq steal
    cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    return sum(vals) - vals[3] - vals[4], max(cpus, 1)


MIN_WINDOW_S = 0.1  # the shortest window over which other processes' CPU use is read


class _OtherCpu:
    """The share of the machine's CPU time that other processes used between construction and ``share()``:
    every CPU's busy time (/proc/stat) less this process's own (all its threads), over the wall time times
    the CPUs. The 1-minute load average used before counted this run's own training just finished, and
    called a quiet 2-core machine busy. (No library reports other processes' CPU use over an interval.)"""

    def __init__(self) -> None:
        self.start = _busy_jiffies()
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def share(self) -> float | None:
        if self.start is None:
            return None
        wall = time.perf_counter() - self.wall
        if wall < MIN_WINDOW_S:  # a tiny network's timing: too short for clock ticks (10 ms) to say much;
            time.sleep(MIN_WINDOW_S - wall)  # idle, this process leaves the CPUs to whatever else runs
            wall = time.perf_counter() - self.wall
        end = _busy_jiffies()
        if end is None:
            return None
        busy = (end[0] - self.start[0]) / os.sysconf("SC_CLK_TCK")
        own = time.process_time() - self.cpu
        return float(min(max((busy - own) / (wall * end[1]), 0.0), 1.0))


def count_flops(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> float | None:
    """FLOPs of one forward pass on ``x`` (one sample), from PyTorch's own ``torch.utils.flop_counter``
    (a multiply-add counts 2; operators it has no formula for count 0); None if it cannot run."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            forward(x)
        return float(counter.get_total_flops())
    except Exception:  # noqa: BLE001 - a cost column, never a failed run
        return None

