"""Fault injection for the resume tests: ``BAKEOFF_KILL_AT=POINT[:N]`` makes this process kill itself
with SIGKILL the N-th time (default 1) it reaches POINT, as a scheduler's pre-emption or the OOM killer
would. Points: ``step`` (a training step, mid-epoch), ``write:NAME`` (a file NAME half-saved: written
to its temporary name, not yet renamed), ``epoch`` (an epoch finished and checkpointed). Unset (always,
outside tests), each point is one dictionary lookup."""

from __future__ import annotations

import os
import signal
from collections import Counter

_SEEN: Counter[str] = Counter()
ENV = "BAKEOFF_KILL_AT"


def fault_armed() -> bool:
    """Whether any point is armed now (a loop asks once per epoch, not at every step)."""
    return bool(os.environ.get(ENV))


def kill_point(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    want, _, n = spec.rpartition(":") if spec.rsplit(":", 1)[-1].isdigit() else (spec, "", "1")
    if want != name:
        return
    _SEEN[name] += 1
    if _SEEN[name] == int(n):
        os.kill(os.getpid(), signal.SIGKILL)
