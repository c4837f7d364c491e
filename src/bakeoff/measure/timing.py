"""Whether a run's timings can be compared (torch-free: the report reads it from run.json)."""

from __future__ import annotations

BUSY_LOAD = 1.0  # above one runnable process per core, other work competed with the timing
NOISY_SPREAD = 0.5  # repeats whose interquartile range exceeds half their median


def timing_note(speed: dict[str, float]) -> str:
    """'' when a run's timings can be compared; else why not (a busy machine, or repeats that disagree)."""
    notes = []
    load = speed.get("load_per_core")
    if load is not None and load > BUSY_LOAD:
        notes.append(f"machine busy while timing (load {load:.1f} per core)")
    spread = speed.get("latency_spread")
    if spread is not None and spread > NOISY_SPREAD:
        notes.append(f"latency repeats spread {spread:.0%} of their median")
    return "; ".join(notes)
