"""The tables of a study's runs: summary.csv (per contender and metric: mean, spreads, and the
interval its design allows), intervals.csv (each run's bootstrap interval on its own test units) and the
paired differences the terminal shows. Statistics, computed here; ``report/`` writes and draws them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from bakeoff.config import StudyConfig
from bakeoff.stats.bootstrap import bootstrap_cis
from bakeoff.tasks import task_for

DONE = "done"  # a finished run's status (runs.store.DONE; stats reads results, it does not import runs)
ID_COLUMNS = ["contender", "seed", "fold", "run_id", "status"]
COST_COLUMNS = ["n_parameters", "flops_per_sample", "train_time_s", "train_samples_per_s", "peak_memory_mb",
                "latency_ms", "throughput_per_s", "epochs_trained", "best_epoch"]


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


def run_intervals(study: StudyConfig, df: pd.DataFrame, evaluations: dict) -> pd.DataFrame:
    """Each run's uncertainty on its own test units: a bootstrap interval per metric (stratified by class
    for classification), every metric through its registered per-unit form. Dense metrics whose
    per-image tables the evaluation did not keep (boundary metrics switched off) are left out."""
    ev = study.evaluation
    rows = []
    for _, r in df[df["status"] == DONE].iterrows() if len(df) else []:
        e = evaluations[(r["contender"], r["run_id"])]
        part = dict(e["preds"]["test"])
        if e.get("tables", {}).get("test"):
            part["tables"] = e["tables"]["test"]
        task = task_for(study.task, {"test": part}, ev)
        names = tuple(m for m in task.metric_names if task.metric(m).resamplable
                      and ("tables" not in part or m in part["tables"]))
        cis = bootstrap_cis(task, part, ev.threshold, ev.n_boot, 1 - ev.alpha, seed=int(r["seed"]), names=names)
        how = f"{'stratified ' if task.stratify_by_label else ''}bootstrap over test {task.unit}s"
        for metric, c in cis.items():
            rows.append({"contender": r["contender"], "seed": r["seed"], "fold": r["fold"], "metric": metric,
                         **c, "method": f"{how}, {ev.n_boot} resamples, percentile, {1 - ev.alpha:.0%}"})
    return pd.DataFrame(rows)
