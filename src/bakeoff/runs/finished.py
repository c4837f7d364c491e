"""A rerun of a finished study, answered without torch: when the study file (all but ``execution`` and
``tracking``), the data source's files (sizes and modification times) and every planned run are as the
last complete run left them, and the report is newer than every run, there is nothing to train or to
recompute. Anything else (a changed setting, a touched data file, a missing run) takes the full path."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bakeoff.runs.store import StudyStore
from bakeoff.utils import read_json, stable_hash, write_json

STAMP_FILE = "finished_stamp.json"
RESULTS_FILE = "results.csv"


def data_stamp(data_cfg: Any) -> str:
    """A fingerprint of where the data come from: the source and its parameters, and for files and
    folders each file's size and modification time (no file is read)."""
    source = str(data_cfg.source)
    kind, _, rest = source.partition(":")
    entries: list[Any] = [source, data_cfg.model_dump(mode="json")]
    path = Path(rest).expanduser() if rest else None
    if path is not None and path.exists():
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        if kind == "csv" and path.is_file():  # a manifest names image files beside it
            files += sorted(p for p in path.parent.rglob("*") if p.is_file() and p != path)
        for f in files:
            st = f.stat()
            entries.append((str(f), st.st_size, st.st_mtime_ns))
    return stable_hash(entries)


def _settings(cfg: Any) -> dict[str, Any]:
    return cfg.model_dump(mode="json", exclude={"execution", "tracking"})


def write_stamp(store: StudyStore, cfg: Any) -> None:
    write_json(store.root / STAMP_FILE, {"settings": _settings(cfg), "data": data_stamp(cfg.data)})


def nothing_to_do(store: StudyStore, cfg: Any) -> bool:
    """Whether ``cfg`` run into ``store`` would change nothing (see the module's doc)."""
    stamp_path = store.root / STAMP_FILE
    results = store.root / RESULTS_FILE
    if not stamp_path.is_file() or not results.is_file():
        return False
    stamp = read_json(stamp_path)
    if stamp.get("settings") != _settings(cfg) or stamp.get("data") != data_stamp(cfg.data):
        return False
    runs = store.read_plan()
    if not runs or not all(store.is_done(r) for r in runs):
        return False
    newest = max(os.stat(store.run_dir(r) / "run.json").st_mtime_ns for r in runs)
    return results.stat().st_mtime_ns >= newest and stamp_path.stat().st_mtime_ns >= newest
