"""Shared by the training benchmarks: time loops side by side in one process and print paired ratios.

Each loop is a function ``(epochs, repeat) -> seconds`` that builds nothing outside its timing except the
network (the same for all), and trains for ``epochs`` with validation after each one. Every repeat runs
every loop at a short and a long epoch count, one after another, the loops' order rotated from repeat to
repeat, so that drift in machine load hits all alike and no loop always goes first. Each repeat gives one
*paired* ratio per loop: the reference's time over the loop's in that repeat, for the whole long run and for
the marginal cost of an epoch, (t_long - t_short) / (long - short), which leaves out one-off set-up.
Printed: the median paired ratio, its 95 % confidence interval, its range over the pairs, and the number of
pairs (>= 1 means at least as fast as the reference; the target is >= 0.95). The interval is the
distribution-free one for a median (order statistics, ``scipy.stats.quantile_test``): no assumption about how
the ratios scatter, which on this 2-core CPU is lopsided (another process now and then slows one run by 10-40 %).
It needs 6 pairs to exist and 9 before it is narrower than the range; with two-second runs varying by 5-15 %
from run to run, 15 pairs bring it to about +-3 % here, so that a 5 % shortfall shows.

The reference is the fastest reasonable hand-written loop: tensors in memory, a shuffled index, the
optimizer's fused kernel where the device has one (``fast_adam``), and the validation and selection work a
bakeoff run does (score every epoch, keep the best weights, ``keep_best``, and write them to a file at the
end, ``save_best``), in the environment of a script that never imported Lightning (``plain_torch``).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from bench_table import fmt_ratio

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


@contextlib.contextmanager
def plain_torch() -> Iterator[None]:
    """The environment of a script that never imported Lightning: importing it sets
    PYTORCH_NVML_BASED_CUDA_CHECK=1, which makes every Adam step re-probe NVML on a machine without a GPU.
    A hand loop runs inside this, so that it does not pay for bakeoff's imports."""
    saved = os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = saved


def fast_adam(params, lr: float = 1e-3) -> torch.optim.Optimizer:
    """Adam as fast as it goes here: the fused kernel (CPU and CUDA in recent PyTorch), else foreach."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, foreach=True)


def keep_best(model: torch.nn.Module, score: float, best: dict) -> None:
    """What a run's selection does: keep a copy of the weights whenever the validation score improves."""
    if score > best.get("score", -float("inf")):
        best["score"] = score
        best["state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}


SCRATCH = Path(tempfile.mkdtemp(prefix="bakeoff-bench-"))


def save_best(best: dict) -> None:
    """What a script does with the weights it selected, and bakeoff does too (checkpoints/best.ckpt)."""
    torch.save(best["state"], SCRATCH / "best.pt")


def median_ci(ratios: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The distribution-free confidence interval of the median of ``ratios`` (NaN where there are too few)."""
    x = np.asarray(ratios, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan"), float("nan")
    from scipy.stats import quantile_test

    ci = quantile_test(x, q=float(np.median(x)), p=0.5).confidence_interval(level)
    return float(ci.low), float(ci.high)


def compare(loops: dict[str, Loop], reference: str, epochs: tuple[int, int], repeats: int, units_per_epoch: int,
            unit: str, title: str = "") -> dict[str, dict[str, float]]:
    """Run every loop ``repeats`` times at both epoch counts, alternating and rotating their order; print
    and return the median paired ratios with their 95 % intervals and ranges. With ``BENCH_SUMMARY`` set
    (``make bench``), each loop's row is also appended there as a JSON line for ``bench_table.py``."""
    if title:
        print(title, flush=True)
    short, long = epochs
    names = list(loops)
    for fn in loops.values():  # warm-up: imports, allocator, cuDNN autotuning
        reset()
        fn(1, -1)
    times: dict[str, dict[int, list[float]]] = {k: {short: [], long: []} for k in loops}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for e in (short, long) if r % 2 == 0 else (long, short):
            for name in order:
                reset()
                times[name][e].append(loops[name](e, r))
    ref = times[reference]
    out: dict[str, dict[str, float]] = {}
    print(f"{'loop':34s} {long:>3d} ep (s) {unit + '/s':>12s} {'s/epoch':>9s}   "
          f"{'whole: median [95% CI] (range)':>36s}   {'marginal: median [95% CI] (range)':>36s}")
    for name, t in times.items():
        tl, ts = np.array(t[long]), np.array(t[short])
        whole = np.array(ref[long]) / tl
        marg_ref = (np.array(ref[long]) - np.array(ref[short])) / (long - short)
        marg = (tl - ts) / (long - short)
        marginal = np.where(marg > 0, marg_ref / np.where(marg > 0, marg, 1), np.nan)
        o = out[name] = {"long_s": float(np.median(tl)), "short_s": float(np.median(ts)),
                         "per_s": units_per_epoch * long / float(np.median(tl)),
                         "marginal_s": float(np.median(marg)), "whole_ratio": float(np.median(whole)),
                         "whole_ci": median_ci(whole), "whole_range": (float(whole.min()), float(whole.max())),
                         "marginal_ratio": float(np.nanmedian(marginal)), "marginal_ci": median_ci(marginal),
                         "marginal_range": (float(np.nanmin(marginal)), float(np.nanmax(marginal))), "pairs": repeats}
        print(f"{name:34s} {o['long_s']:10.2f} {o['per_s']:12.0f} {o['marginal_s']:9.3f}   "
              f"{fmt_ratio(o, 'whole'):>36s}   {fmt_ratio(o, 'marginal'):>36s}")
    print(f"paired ratios: {reference}'s time / the loop's in the same repeat (target >= 0.95 for bakeoff); "
          f"median, its distribution-free 95 % interval (none under 6 pairs) and the range; "
          f"runs at {short} and {long} epochs, {repeats} pairs, loops alternating in rotated order")
    if os.environ.get("BENCH_SUMMARY"):
        with open(os.environ["BENCH_SUMMARY"], "a") as fh:
            for name, o in out.items():
                if name != reference:
                    fh.write(json.dumps({"workload": title, "loop": name, "reference": reference, **o}) + "\n")
    return out
