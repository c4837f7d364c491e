"""The determinism policy: bit-identical where the hardware allows, never a crashed run unless asked.

``protocol.deterministic``:
  * ``auto`` (default): PyTorch's deterministic algorithms in ``warn_only`` mode, cuDNN deterministic and
    not benchmarking. Every op that has a deterministic kernel uses it (all of them on CPU, so CPU reruns are
    bit-identical); an op that has none (e.g. ``max_pool3d`` backward, ``nll_loss2d`` on CUDA) runs anyway
    and is recorded quietly.
  * ``warn``: the same, and PyTorch's warning for each such op is shown.
  * ``true``: strict; an op without a deterministic kernel raises (PyTorch's error).
  * ``false``: off; cuDNN may benchmark and pick the fastest (non-deterministic) kernels.

What the run got is recorded (``run.json → training.determinism``): ``strict`` (deterministic kernels
throughout), ``warn`` (with the ops that had none) or ``off``, and PyTorch's ``fill_uninitialized_memory``
(left off: see ``apply``).
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Iterator
from typing import Any

import torch

Policy = bool | str
# PyTorch's wording for an op without a deterministic kernel (warn_only mode), e.g.
# "max_pool3d_with_indices_backward_cuda does not have a deterministic implementation, but you set ..."
_NONDET = re.compile(r"^(\S+) does not have a deterministic implementation")


def normalise(policy: Policy) -> str:
    if policy is True:
        return "true"
    if policy is False:
        return "false"
    return str(policy)


def cublas_workspace(policy: Policy) -> None:
    """cuBLAS needs a fixed workspace for deterministic matmuls; read when CUDA initialises, so set early."""
    if normalise(policy) != "false":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def apply(policy: Policy) -> None:
    """Set PyTorch's global switches for ``policy`` (before the run's first CUDA op)."""
    p = normalise(policy)
    on = p != "false"
    cublas_workspace(p)
    torch.use_deterministic_algorithms(on, warn_only=p in ("auto", "warn"))
    # PyTorch also fills every new uninitialised tensor (torch.empty) with NaN under deterministic algorithms,
    # which only matters to an op that reads memory it never wrote; it cost a resnet18 on an H100 ~400 extra
    # kernel launches per step (25,000 fills in 64 steps). Off: the kernels stay deterministic (recorded).
    torch.utils.deterministic.fill_uninitialized_memory = False
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = not on


@contextlib.contextmanager
def recorded(policy: Policy) -> Iterator[dict[str, Any]]:
    """Apply ``policy`` and collect the ops that ran without a deterministic kernel; yields the record,
    filled in on exit: ``{"policy", "mode", "nondeterministic_ops"}``."""
    p = normalise(policy)
    with applied(p):  # the caller's process (the trainer API, a notebook) gets its own settings back after
        record: dict[str, Any] = {"policy": p, "mode": "off" if p == "false" else "strict",
                                  "nondeterministic_ops": [],
                                  "fill_uninitialized_memory": bool(torch.utils.deterministic.fill_uninitialized_memory)}
        if p not in ("auto", "warn"):
            yield record
            return
        yield from _collect(p, record)


@contextlib.contextmanager
def applied(policy: Policy) -> Iterator[None]:
    """``policy`` for the duration of the block (predicting a run's test set), the caller's settings after."""
    before = _switches()
    try:
        apply(policy)
        yield
    finally:
        _restore(before)


def _switches() -> tuple[bool, bool, bool, bool, bool]:
    return (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
            bool(torch.utils.deterministic.fill_uninitialized_memory), bool(torch.backends.cudnn.deterministic),
            bool(torch.backends.cudnn.benchmark))


def _restore(state: tuple[bool, bool, bool, bool, bool]) -> None:
    on, warn_only, fill, cudnn_det, bench = state
    torch.use_deterministic_algorithms(on, warn_only=warn_only)
    torch.utils.deterministic.fill_uninitialized_memory = fill
    torch.backends.cudnn.deterministic = cudnn_det
    torch.backends.cudnn.benchmark = bench


def _collect(p: str, record: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield ``record`` while PyTorch's warnings about ops without a deterministic kernel are collected."""
    ops: set[str] = set()
    others: list[warnings.WarningMessage] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # one record per distinct message and place, not one per step
        try:
            yield record
        finally:
            for w in caught:
                m = _NONDET.match(str(w.message))
                if m:
                    ops.add(m.group(1))
                if not m or p == "warn":
                    others.append(w)
    for w in others:  # everything else (and, for 'warn', PyTorch's own warning) is shown as usual
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    record["nondeterministic_ops"] = sorted(ops)
    if ops:
        record["mode"] = "warn"
