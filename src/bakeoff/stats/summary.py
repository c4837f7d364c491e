"""What ``comparison.json`` holds beside the pairwise verdicts, computed once here for ``bakeoff report``
with or without figures: rank stability (bootstrap of units and seeds), every pair's Holm-adjusted verdict
(the significance map) and each contender's calibration (expected calibration error with the points of
its reliability diagram). ``report/`` only reads and draws these."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from bakeoff.config import StudyConfig
from bakeoff.measure.metrics import ECE_BINS, calibration_error
from bakeoff.stats.compare import adjust_pairs, compare_runs, test_parts
from bakeoff.stats.rank_stability import rank_stability, significance_map
from bakeoff.tasks import task_class, task_for


def all_pairs(study: StudyConfig, df: pd.DataFrame, evaluations: dict, comparison: dict) -> list[dict[str, Any]]:
    """Every pair's Holm-adjusted verdict on the primary metric (the comparison's own pairs when it
    compared them all; else every pair, adjusted over all of them)."""
    ev = study.evaluation
    order = [c for c in study.contenders if c in set(df.get("contender", []))]
    if ev.pairs == "all" or len(order) <= 2:
        return comparison.get("pairs", [])
    pairs = [p for i, (a, b) in enumerate(combinations(order, 2))
             if (p := compare_runs(study.task, evaluations, df, a, b, ev, seed=i)) is not None]
    adjust_pairs(pairs, ev.primary, ev.alpha)
    return pairs


def reliability(evaluations: dict, order: list[str], n_bins: int = ECE_BINS) -> dict[str, dict[str, Any]]:
    """Per contender on test: the expected calibration error (``measure.metrics.calibration_error``; each
    run's as its evaluation kept it; mean over runs) and its reliability diagram's points (runs pooled: mean
    confidence and observed frequency per non-empty bin)."""
    edges = np.linspace(0, 1, n_bins + 1)
    out: dict[str, dict[str, Any]] = {}
    for contender in order:
        runs = [v for (c, _), v in evaluations.items() if c == contender]
        if not runs:
            continue
        conf_all, hit_all, per_run = [], [], []
        for v in runs:
            d = v["preds"]["test"]
            y, p = np.asarray(d["y"]), np.asarray(d["probs"], dtype=np.float64)
            kept = v.get("eval", {}).get("test_ece") if n_bins == ECE_BINS else None
            per_run.append(float(kept) if kept is not None else calibration_error(y, p, n_bins))
            if p.ndim == 1:
                conf, hit = p, y.astype(float)  # P(y = 1) against its observed frequency
            else:
                conf, hit = p.max(axis=1), (p.argmax(axis=1) == y).astype(float)
            conf_all.append(conf)
            hit_all.append(hit)
        conf, hit = np.concatenate(conf_all), np.concatenate(hit_all)
        which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
        bins = [b for b in range(n_bins) if (which == b).any()]
        out[contender] = {"ece": float(np.mean(per_run)),
                          "top_label": bool(np.asarray(runs[0]["preds"]["test"]["probs"]).ndim > 1),
                          "confidence": [float(conf[which == b].mean()) for b in bins],
                          "frequency": [float(hit[which == b].mean()) for b in bins]}
    return out


def study_summary(study: StudyConfig, df: pd.DataFrame, evaluations: dict, comparison: dict) -> dict[str, Any]:
    """The entries ``comparison.json`` holds beside the verdicts: ``rank_stability``, ``significance_map``
    and ``calibration`` (each only where it is defined)."""
    ev = study.evaluation
    order = [c for c in study.contenders if len(df) and c in set(df["contender"])]
    done = [c for c in order if len(df[(df["contender"] == c) & (df["status"] == "done")])]
    out: dict[str, Any] = {}
    if len(done) >= 2 and not comparison.get("note"):
        parts = {c: test_parts(evaluations, df, c) for c in done}
        first = next(iter(next(iter(parts.values())).values()))
        task = task_for(study.task, {"test": first}, ev)
        if task.metric(ev.primary).resamplable:
            stability = rank_stability(task, parts, ev.primary, ev.threshold, n_boot=min(ev.n_boot, 1000))
            if stability:
                out["rank_stability"] = stability
        pairs = all_pairs(study, df, evaluations, comparison)
        if pairs:
            out["significance_map"] = significance_map(pairs, done)
            if pairs is not comparison.get("pairs"):  # its own family: the verdicts compare with the baseline
                out["significance_map"]["family"] = (
                    f"every pair, Holm-adjusted over all {len(pairs)}; the verdicts above compare each contender "
                    f"with the baseline, adjusted over {len(comparison.get('pairs', []))}, so a cell near the "
                    f"line can differ from its verdict")
    if evaluations and task_class(study.task).calibration:
        curves = reliability(evaluations, order)
        if curves:
            out["calibration"] = {"metric": f"expected calibration error (L1, {ECE_BINS} bins), test",
                                  "ece": {c: v["ece"] for c, v in curves.items()}, "n_bins": ECE_BINS,
                                  "curves": {c: {k: v[k] for k in ("confidence", "frequency", "top_label")}
                                             for c, v in curves.items()}}
    return out
