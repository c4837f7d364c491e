"""Whether a run's timings can be compared (torch-free: the report reads it from run.json)."""

from __future__ import annotations

BUSY_SHARE = 0.25  # other processes used over a quarter of the machine's CPU time while a run was timed
BUSY_LOAD = 1.0  # (runs timed before others_cpu_share) a 1-minute load above one runnable process per core
NOISY_SPREAD = 0.5  # repeats whose interquartile range exceeds half their median


def timing_note(speed: dict[str, float]) -> str:
    """'' when a run's timings can be compared; else why not (a busy machine, or repeats that disagree)."""
    notes = []
    share, load = speed.get("others_cpu_share"), speed.get("load_per_core")
    if share is not None:
        if share > BUSY_SHARE:
            notes.append(f"machine busy while timing (other processes used {share:.0%} of the CPU time)")
    elif load is not None and load > BUSY_LOAD:
        notes.append(f"machine busy while timing (load {load:.1f} per core)")
    spread = speed.get("latency_spread")
    if spread is not None and spread > NOISY_SPREAD:
        notes.append(f"latency repeats spread {spread:.0%} of their median")
    return "; ".join(notes)
