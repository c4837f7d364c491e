"""What a study tells its caller while it runs: one dataclass per kind of event, passed to the
``progress`` callback of ``Study.run`` (the command line draws its progress bars from them). An event
names its run (or, while tuning, its contender) and carries its own typed fields."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bakeoff.runs.spec import RunSpec


@dataclass(frozen=True)
class Skipped:
    """A run already done in the study directory: not run again."""
    run: RunSpec
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Damaged:
    """A finished run whose kept files cannot be trusted: it is trained again."""
    run: RunSpec
    reason: str


@dataclass(frozen=True)
class Queued:
    """A run submitted as a job (SLURM)."""
    run: RunSpec
    job: str


@dataclass(frozen=True)
class Started:
    run: RunSpec


@dataclass(frozen=True)
class EpochDone:
    run: RunSpec
    epoch: int
    epochs: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class Finished:
    """A run ended, done or failed (``info`` is its run.json: ``status``, ``error``)."""
    run: RunSpec
    info: dict[str, Any]

    @property
    def failed(self) -> bool:
        return self.info.get("status") != "done"


@dataclass(frozen=True)
class TrialDone:
    """Tuning: a contender's trial began (``trial`` of ``trials``) with these parameters."""
    contender: str
    trial: int
    trials: int
    params: dict[str, Any]


@dataclass(frozen=True)
class TrialFailed:
    contender: str
    trial: int
    error: str


@dataclass(frozen=True)
class Planned:
    """A suite planned every dataset's study: these runs in all (done ones included)."""
    runs: list[RunSpec]


Event = Skipped | Damaged | Queued | Started | EpochDone | Finished | TrialDone | TrialFailed | Planned
Progress = Callable[[Event], None]
