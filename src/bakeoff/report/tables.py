"""results.csv: one row per run, with its metrics recomputed from the run's saved predictions (read from the
study directory; the statistics over these rows are ``stats.tables``)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from bakeoff.config import EvaluationConfig
from bakeoff.measure.metrics import SCORES_FILE, choose_threshold, evaluate_predictions, load_predictions
from bakeoff.measure.timing import timing_note
from bakeoff.runs.store import DATA_CHECKS_FILE, DONE, PREDICTIONS_FILE, StudyStore
from bakeoff.stats.tables import COST_COLUMNS, ID_COLUMNS
from bakeoff.tasks import (
    task_for,  # noqa: F401 - re-exported for the report's modules
)
from bakeoff.utils import read_json


def collect_results(store: StudyStore, task_name: str, threshold: float, order: list[str],
                    val_threshold: str = "none", settings: EvaluationConfig | None = None,
                    ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per run with metrics recomputed from its predictions.npz; also the per-run evaluations."""
    rows, evaluations = [], {}
    checks = store.root / DATA_CHECKS_FILE
    names = (read_json(checks).get("class_names") or {}) if checks.is_file() else {}
    for info in store.all_run_infos():
        row = {k: info.get(k) for k in ID_COLUMNS}
        if info.get("status") == DONE:
            run_dir = store.run_path(info["contender"], info["run_id"])
            preds = load_predictions(run_dir / PREDICTIONS_FILE)
            task = task_for(task_name, preds, settings)
            tables: dict[str, Any] = {}
            ev = evaluate_predictions(task, preds, threshold, tables, cache=run_dir / SCORES_FILE,
                                      chance_metric=settings.primary if settings is not None else None)
            evaluations[(info["contender"], info["run_id"])] = {"eval": ev, "preds": preds, "tables": tables}
            for part in ("test", "val"):
                row.update({f"{part}_{k}": v for k, v in ev.get(part, {}).items()})
            if val_threshold != "none" and task.thresholded and "val" in preds:
                thr = choose_threshold(preds["val"]["y"], preds["val"]["probs"], val_threshold)
                at = task.metrics(preds["test"]["y"], preds["test"]["probs"], thr)
                row["val_threshold"] = thr
                row.update({f"test_{k}@val_thr": v for k, v in at.items() if not task.metric(k).threshold_free})
            speed, training = info.get("speed") or {}, info.get("training") or {}
            row.update({k: info.get(k, speed.get(k, training.get(k))) for k in COST_COLUMNS})
            row["threshold"] = threshold
            row["timing_note"] = timing_note(speed)  # '' when the timings can be compared
            if "test" in preds:  # a run that collapsed to one class (tasks that can tell; '' when healthy)
                named = [names.get(str(k), str(k)) for k in range(max(len(names), 1))] if names else None
                row["health"] = task.health({**preds["test"], "class_names": named,
                                             "confusion": ev.get("test_confusion")}, threshold)
            if "val_chance" in ev:  # tasks that can tell have the column
                row["val_chance"] = ev["val_chance"]
        else:
            row["error"] = info.get("error")
        rows.append(row)
    df = pd.DataFrame(rows)
    if len(df):
        rank = {c: i for i, c in enumerate(order)}
        df = df.sort_values(["contender", "seed", "fold"], key=lambda s: s.map(rank) if s.name == "contender" else s)
        df = df.reset_index(drop=True)
    return df, evaluations
