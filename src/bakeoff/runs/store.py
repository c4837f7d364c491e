"""The on-disk layout of a study's results: atomic writes, a lock, and a guard against mixing studies.

    DIR/study.yaml                     the resolved study
    DIR/runs/<contender>/<run>/        run.json, predictions.npz, metrics.json, checkpoints/, logs/
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bakeoff.config import StudyConfig
from bakeoff.errors import BakeoffError
from bakeoff.layout import (  # noqa: F401 - the layout's names, also from here
    BEST_FILE,
    CHECKPOINTS_DIR,
    CSV_LOG,
    DATA_CHECKS_FILE,
    FEATURES_FILE,
    GRADCAM_FILE,
    LOGS_DIR,
    METRICS_FILE,
    PLAN_FILE,
    PREDICTIONS_FILE,
    PROGRESS_FILE,
    RESUME_FILE,
    RUN_FILE,
    SEQUENTIAL_FILE,
    STALE_DIR,
    STUDY_FILE,
)
from bakeoff.runs.spec import RunSpec
from bakeoff.utils import atomic_write_text, nearest_existing, orphan_temps, read_json, sha256_of, write_json

_HASHED: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> SHA-256

DONE, FAILED, RUNNING = "done", "failed", "running"


# data sources that read every file under a folder: an output directory inside one would become data
SCANNED_SOURCES = ("folder", "tiff_dir", "npz_dir")


class StudyStore:
    def __init__(self, out: str | os.PathLike) -> None:
        self.root = Path(out)
        self._lock_fh = None

    # -- the study ----------------------------------------------------------------------------------
    def saved_study(self) -> StudyConfig:
        path = self.root / STUDY_FILE
        if not path.is_file():
            raise BakeoffError(f"{self.root}: no {STUDY_FILE} here; expected the --out directory of a bakeoff run")
        from bakeoff.config import validate_study

        return validate_study(yaml.safe_load(path.read_text()), source=str(path))

    def check_for(self, study: StudyConfig) -> None:
        """Everything ``open_for`` would refuse, without writing: the path is a directory (or can be made
        one) we may write to, and holds nothing or this same study."""
        if self.root.exists() and not self.root.is_dir():
            raise BakeoffError(f"--out {self.root}: is a file; expected a directory (new, empty, or this study's)")
        existing = nearest_existing(self.root)
        if not existing.is_dir():
            raise BakeoffError(f"--out {self.root}: {existing} is a file; expected a directory path")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise BakeoffError(f"--out {self.root}: {existing} is not writable by this user; expected a directory "
                               f"you can write to (check its permissions, or choose another --out)")
        kind, _, rest = study.data.source.partition(":")
        if kind in SCANNED_SOURCES and rest:  # sources that read every file under a folder
            data_root = Path(rest).expanduser().resolve()
            if self.root.resolve().is_relative_to(data_root):
                raise BakeoffError(f"--out {self.root}: lies inside the data folder {data_root} ({kind}:), whose "
                                   f"every file is read as data (a rerun would read the results as images); "
                                   f"expected an output directory outside it, e.g. --out {data_root.parent / 'results'}")
        path = self.root / STUDY_FILE
        if path.is_file():
            try:
                saved = self.saved_study()
            except BakeoffError:
                saved = None
            if saved is None or saved.fingerprint() != study.fingerprint():
                name = saved.name if saved else "an unreadable study"
                raise BakeoffError(
                    f"--out {self.root}: holds results of {name!r} with different settings; nothing was "
                    f"changed. Expected a new directory or this study's own: use another --out directory (or the "
                    f"same study file and --set values to resume; more seeds or another contender may be added in "
                    f"place)")
            changed = saved.contender_changes(study)
            if changed:
                raise BakeoffError(
                    f"--out {self.root}: contenders.{changed[0]}: differs from the contender of that name whose "
                    f"runs this directory holds (model, params or protocol overrides); nothing was changed. "
                    f"Give the changed contender a new name, or use another --out directory")
        elif self.root.is_dir() and any(self.root.iterdir()):
            raise BakeoffError(f"--out {self.root}: exists and is not a bakeoff study directory; nothing was "
                               f"changed. Expected a new or empty directory: choose another --out")

    def open_for(self, study: StudyConfig) -> None:
        """Create the directory, or check that it holds this same study; then take the lock."""
        self.check_for(study)
        path = self.root / STUDY_FILE
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BakeoffError(f"--out {self.root}: cannot be created ({exc.strerror}); expected a directory "
                               f"you can write to") from None
        self.lock(wait=True)
        for tmp in orphan_temps(self.root):  # half-written files of a killed bakeoff process: never read, removed
            tmp.unlink(missing_ok=True)
        atomic_write_text(path, study.to_yaml())

    def lock(self, wait: bool = False) -> None:
        """Take the directory's lock. ``wait``: a second ``bakeoff run`` of the same study waits for the
        first (then finds its runs done and trains only what is left) instead of failing."""
        self.root.mkdir(parents=True, exist_ok=True)
        fh = open(self.root / ".lock", "w")  # noqa: SIM115 - held for the life of the store
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            if not wait:
                fh.close()
                raise BakeoffError(f"--out {self.root}: another bakeoff process is using this directory; expected "
                                   f"it to finish first (bakeoff status shows its progress)") from None
            print(f"{self.root}: another bakeoff process is running this study; waiting for it to finish, then "
                  f"only the runs it did not do are trained", file=sys.stderr, flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        self._lock_fh = fh

    def is_locked(self) -> bool:
        """Whether another process holds the directory's lock now."""
        path = self.root / ".lock"
        if not path.is_file():
            return False
        with open(path) as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
        return False

    def unlock(self) -> None:
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    # -- runs -----------------------------------------------------------------------------------------
    def run_path(self, contender: str, run_id: str) -> Path:
        """The one place that knows the layout ``DIR/runs/<contender>/<run>``."""
        return self.root / "runs" / contender / run_id

    def run_dir(self, run: RunSpec) -> Path:
        return self.run_path(run.contender, run.run_id)

    def write_plan(self, runs: list[RunSpec]) -> None:
        write_json(self.root / PLAN_FILE, [r.to_json() for r in runs])

    def read_plan(self) -> list[RunSpec] | None:
        path = self.root / PLAN_FILE
        return [RunSpec(**r) for r in read_json(path)] if path.is_file() else None

    def adopt_earlier(self, runs: list[RunSpec], earlier: Callable[[RunSpec, list[int]], str]) -> int:
        """Runs finished (or interrupted) when a run's hash still held the study's list of seeds: a run whose
        run.json hash is ``earlier(run, the seeds its run.json records)`` is this very run, so its run.json
        takes the current hash (the old one kept as ``hash_before``). Returns how many were adopted."""
        adopted = 0
        for run in runs:
            path = self.run_dir(run) / RUN_FILE
            if not path.is_file():
                continue
            info = read_json(path)
            seeds = (info.get("protocol") or {}).get("seeds")
            if info.get("hash") == run.hash or not isinstance(seeds, list) or info.get("hash") != earlier(run, seeds):
                continue
            info["hash_before"], info["hash"] = info["hash"], run.hash
            self.write_run(run, info)
            adopted += 1
        return adopted

    def run_info(self, run: RunSpec) -> dict[str, Any] | None:
        path = self.run_dir(run) / RUN_FILE
        return read_json(path) if path.is_file() else None

    def is_done(self, run: RunSpec) -> bool:
        """Finished with these settings, its predictions saved and its kept weights (when kept) intact."""
        info = self.run_info(run)
        return bool(info and info.get("status") == DONE and info.get("hash") == run.hash
                    and (self.run_dir(run) / PREDICTIONS_FILE).is_file() and self.damaged(run, info) is None)

    def damaged(self, run: RunSpec, info: dict[str, Any] | None = None) -> str | None:
        """Why a finished run's kept weights cannot be trusted (they differ from the SHA-256 in its run.json:
        cut short, overwritten, bit rot), or None. A deleted checkpoint is not damage (``keep_checkpoints:
        false``, or removed to save space: the report needs only the predictions). Each file is hashed once
        per (size, modification time)."""
        info = self.run_info(run) if info is None else info
        want = (info or {}).get("checkpoint_sha256")
        path = self.run_dir(run) / CHECKPOINTS_DIR / BEST_FILE
        if not want or not path.is_file():
            return None
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in _HASHED:
            _HASHED[key] = sha256_of(path)
        if _HASHED[key] == want:
            return None
        return (f"{path}: its SHA-256 differs from the one its run.json recorded when it was saved (the file was "
                f"damaged or replaced); the run is trained again")

    def start(self, run: RunSpec) -> Path:
        """A clean directory for a run that is not done: failed or interrupted leftovers are removed, except
        the resume checkpoint of an interrupted attempt at the very same run (same hash, not failed), from
        which training continues."""
        d = self.run_dir(run)
        last = d / CHECKPOINTS_DIR / RESUME_FILE
        info = self.run_info(run) if d.exists() else None
        keep = last.is_file() and info is not None and info.get("hash") == run.hash and info.get("status") == RUNNING
        if keep:
            for p in d.iterdir():
                if p.name != CHECKPOINTS_DIR:
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
            for p in (d / CHECKPOINTS_DIR).iterdir():
                if p != last:
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
            return d
        if d.exists() and info is not None and info.get("status") == DONE and info.get("hash") != run.hash:
            # a finished run of other data or settings: kept aside, never replaced silently (bakeoff clean)
            aside = self.root / STALE_DIR / str(info.get("hash")) / run.contender / run.run_id
            aside.parent.mkdir(parents=True, exist_ok=True)
            if aside.exists():
                shutil.rmtree(aside)
            d.rename(aside)
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        return d

    def stale(self) -> list[Path]:
        """What ``bakeoff clean`` removes: finished runs kept aside when their study's data or settings
        changed (DIR/stale/), and run directories the current plan does not hold."""
        plan = self.read_plan() or []
        planned = {(r.contender, r.run_id) for r in plan}
        extra = [p.parent for p in sorted((self.root / "runs").glob(f"*/*/{RUN_FILE}"))
                 if plan and (p.parent.parent.name, p.parent.name) not in planned]
        aside = sorted((self.root / STALE_DIR).glob("*/*/*")) if (self.root / STALE_DIR).is_dir() else []
        return aside + extra

    def finish(self, run: RunSpec) -> None:
        """A run is done: its resume checkpoint is no longer needed (the kept one is weights only)."""
        (self.run_dir(run) / CHECKPOINTS_DIR / RESUME_FILE).unlink(missing_ok=True)

    def write_run(self, run: RunSpec, info: dict[str, Any]) -> None:
        write_json(self.run_dir(run) / RUN_FILE, info)

    def all_run_infos(self) -> list[dict[str, Any]]:
        """The current study's runs: those of its plan (the same hash) when the plan is written, so that
        a report never mixes in runs of earlier data or settings; every run directory otherwise."""
        infos = [read_json(p) for p in sorted((self.root / "runs").glob(f"*/*/{RUN_FILE}"))]
        plan = self.read_plan()
        if not plan:
            return infos
        current = {(r.contender, r.run_id, r.hash) for r in plan}
        return [i for i in infos if (i.get("contender"), i.get("run_id"), i.get("hash")) in current]
