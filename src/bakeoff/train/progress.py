"""A run's progress as training reports it: the caller's callback and DIR/runs/<c>/<run>/progress.json
(epoch, ETA, metrics) that ``bakeoff status`` reads from anywhere."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bakeoff.layout import PROGRESS_FILE
from bakeoff.utils import write_json

Report = Callable[[int, int, dict[str, float]], None]


def progress_recorder(report: Report | None, run_dir: Any) -> Report:
    """The caller's epoch report, plus progress.json in the run directory (epoch, time, metrics)."""
    t0, first = time.time(), []  # the first epoch this attempt reports (a resumed run starts later)

    def record(epoch: int, epochs: int, metrics: dict[str, float]) -> None:
        if not first:
            first.append(epoch)
        per_epoch = (time.time() - t0) / max(epoch - first[0] + 1, 1)
        write_json(run_dir / PROGRESS_FILE, {"epoch": epoch, "epochs": epochs, "eta_s": per_epoch * (epochs - epoch),
                                             "updated": time.time(), "metrics": metrics})
        if report is not None:
            report(epoch, epochs, metrics)

    return record
