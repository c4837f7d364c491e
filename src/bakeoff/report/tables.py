"""results.csv (one row per run) and summary.csv (one row per contender and metric)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from bakeoff.config import EvaluationConfig
from bakeoff.measure.metrics import SCORES_FILE, choose_threshold, evaluate_predictions, load_predictions
from bakeoff.measure.timing import timing_note
from bakeoff.runs.store import DATA_CHECKS_FILE, DONE, PREDICTIONS_FILE, StudyStore
from bakeoff.tasks import (
    task_for,  # noqa: F401 - re-exported for the report's modules
)
from bakeoff.utils import read_json

ID_COLUMNS = ["contender", "seed", "fold", "run_id", "status"]
COST_COLUMNS = ["n_parameters", "flops_per_sample", "train_time_s", "train_samples_per_s", "peak_memory_mb",
                "latency_ms", "throughput_per_s", "epochs_trained", "best_epoch"]


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


def metric_columns(df: pd.DataFrame) -> list[str]:
    skip = set(ID_COLUMNS) | {"threshold", "error"}
    return [c for c in df.columns if c not in skip and pd.api.types.is_numeric_dtype(df[c])]


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval of the mean across runs (NaN with fewer than two runs)."""
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return float("nan"), float("nan")
    mean, sem = float(np.mean(values)), float(stats.sem(values))
    if sem == 0:
        return mean, mean
    lo, hi = stats.t.interval(level, len(values) - 1, loc=mean, scale=sem)
    return float(lo), float(hi)


def summarize(df: pd.DataFrame, order: list[str],
              intervals: dict[str, dict[str, dict[str, Any]]] | None = None) -> pd.DataFrame:
    """Per contender and metric over its completed runs: n, mean, std over runs (ddof=1), and the spreads
    over seeds and folds. An interval of a contender's own score must know that its runs share test
    samples: ``intervals`` gives such intervals ({column: {contender: {ci_low, ci_high, method}}}, from
    the comparison's design model). Other test and validation metrics get none (a t-interval over runs
    would treat runs on one test set as independent); costs, measured anew in every run, get the
    t-interval over runs."""
    done = df[df["status"] == DONE] if len(df) else df
    intervals = intervals or {}
    rows = []
    for contender in order:
        sub = done[done["contender"] == contender]
        if sub.empty:
            continue
        columns = metric_columns(done)
        spreads = seed_and_fold_std(sub, columns)
        for col in columns:
            v = sub[col].to_numpy(dtype=float)
            given = intervals.get(col, {}).get(contender)
            if given:
                lo, hi, method = given["ci_low"], given["ci_high"], given.get("method", "design model")
            elif col in COST_COLUMNS:  # times, memory, sizes: never below 0, and neither is their interval
                (lo, hi), method = t_interval(v), "t-interval over runs, 95%, cut at 0"
                lo = max(lo, 0.0) if np.isfinite(lo) else lo
            else:
                lo, hi, method = np.nan, np.nan, ""
            rows.append({"contender": contender, "metric": col, "n": int((~np.isnan(v)).sum()),
                         "mean": float(np.nanmean(v)) if np.any(~np.isnan(v)) else np.nan,
                         "std": float(np.nanstd(v, ddof=1)) if (~np.isnan(v)).sum() > 1 else np.nan,
                         **spreads[col],
                         "ci_low": lo, "ci_high": hi, "ci_method": method})
    return pd.DataFrame(rows)


def seed_and_fold_std(runs: pd.DataFrame, cols: list[str]) -> dict[str, dict[str, float]]:
    """Per column, with several seeds and folds: the spread across seeds (mean over folds of the per-fold
    std) and across folds (std of the per-fold means over seeds), reported apart since they answer
    different questions (training randomness vs which samples were held out). Missing values are left
    out; a spread needs two values (one grouping of every column at once, not a pivot per column)."""
    nan = {"std_seed": np.nan, "std_fold": np.nan}
    if runs.empty or not cols:
        return {c: dict(nan) for c in cols}
    grid = runs.groupby(["fold", "seed"])[cols].first().astype(float)  # first non-missing, as a pivot
    by_fold = grid.groupby(level="fold")
    std_seed, std_fold = by_fold.std(ddof=1).mean(), by_fold.mean().std(ddof=1)
    return {c: {"std_seed": float(std_seed[c]), "std_fold": float(std_fold[c])} for c in cols}


def paired_differences(df: pd.DataFrame, baseline: str, metric: str) -> dict[str, dict[str, float]]:
    """contender - baseline on ``metric``, paired by (seed, fold): mean, std and number of pairs."""
    done = df[df["status"] == DONE]
    base = done[done["contender"] == baseline].set_index(["seed", "fold"])[metric]
    out = {}
    for contender in done["contender"].unique():
        if contender == baseline:
            continue
        other = done[done["contender"] == contender].set_index(["seed", "fold"])[metric]
        diff = (other - base).dropna()
        out[contender] = {"mean": float(diff.mean()) if len(diff) else np.nan,
                          "std": float(diff.std(ddof=1)) if len(diff) > 1 else np.nan, "n_pairs": int(len(diff))}
    return out
