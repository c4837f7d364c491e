"""Shared by the training benchmarks: time loops side by side in one process and print two ratios.

Each loop is a function ``(epochs, repeat) -> seconds`` that builds nothing outside its timing except the
network (the same for all), and trains for ``epochs`` with validation after each one. For every repeat,
every loop runs at a short and a long epoch count, interleaved, so that drift in machine load hits all
alike. Printed per loop: medians at both counts, throughput on the long run and the marginal cost of an
epoch, (t_long - t_short) / (long - short), which leaves out one-off set-up. Ratios are the reference's
time over the loop's (>= 1 means at least as fast as the reference; the target is >= 0.95).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch

Loop = Callable[[int, int], float]


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    return f"CPU, {torch.get_num_threads()} threads (torch {torch.__version__})"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset() -> None:
    """PyTorch's default global switches (a bakeoff run sets its determinism policy; a hand loop gets none)."""
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.deterministic = False
    torch.backends.cudnn.benchmark = False


def compare(loops: dict[str, Loop], reference: str, epochs: tuple[int, int], repeats: int, units_per_epoch: int,
            unit: str) -> dict[str, dict[str, float]]:
    """Run every loop ``repeats`` times at both epoch counts; print and return medians and ratios."""
    short, long = epochs
    for fn in loops.values():  # warm-up: imports, allocator, cuDNN autotuning
        reset()
        fn(1, -1)
    times: dict[str, dict[int, list[float]]] = {k: {short: [], long: []} for k in loops}
    for r in range(repeats):
        for e in (short, long):
            for name, fn in loops.items():
                reset()
                times[name][e].append(fn(e, r))
    out: dict[str, dict[str, float]] = {}
    for name, t in times.items():
        ts, tl = statistics.median(t[short]), statistics.median(t[long])
        out[name] = {"short_s": ts, "long_s": tl, "per_s": units_per_epoch * long / tl,
                     "marginal_s": (tl - ts) / (long - short)}
    ref = out[reference]
    print(f"{'loop':34s} {short:>3d} ep (s) {long:>3d} ep (s) {unit + '/s':>12s} {'s/epoch':>9s} "
          f"{'whole':>7s} {'marginal':>8s}")
    for name, o in out.items():
        o["whole_ratio"] = ref["long_s"] / o["long_s"]
        o["marginal_ratio"] = ref["marginal_s"] / o["marginal_s"] if o["marginal_s"] > 0 else float("nan")
        print(f"{name:34s} {o['short_s']:10.2f} {o['long_s']:10.2f} {o['per_s']:12.0f} {o['marginal_s']:9.3f} "
              f"{o['whole_ratio']:7.3f} {o['marginal_ratio']:8.3f}")
    print(f"ratios: {reference}'s time / the loop's (target >= 0.95 for bakeoff); "
          f"runs at {short} and {long} epochs, median of {repeats}")
    return out
