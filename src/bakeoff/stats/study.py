"""Every number of a study, computed in one call from its runs (issue 44): the verdicts and everything
``comparison.json`` holds beside them, ``summary.csv``, ``intervals.csv`` and the rank table. ``report/``
reads the study directory, calls ``study_result`` and writes and draws what it returns; with or without
figures, the numbers are the same ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from bakeoff.config import StudyConfig
from bakeoff.stats.compare import compare_study
from bakeoff.stats.ranks import friedman_ranks, rank_table
from bakeoff.stats.results import validate
from bakeoff.stats.summary import study_summary
from bakeoff.stats.tables import run_intervals, summarize
from bakeoff.tasks import metric_info


@dataclass
class StudyResult:
    comparison: dict[str, Any]  # comparison.json (``stats.results.Comparison``); {} without runs
    summary: pd.DataFrame  # summary.csv: per contender and metric
    intervals: pd.DataFrame  # intervals.csv: each run's bootstrap interval on its own test units
    ranks: pd.DataFrame | None  # the per-replicate ranks the critical-difference diagram draws


def health_notes(df: pd.DataFrame) -> dict[str, str]:
    """A run's health notes (collapsed test predictions, a validation score at chance), by run."""
    sick = {}
    for r in df.itertuples():
        notes = [t for t in (getattr(r, "health", None), getattr(r, "val_chance", None)) if isinstance(t, str) and t]
        if notes:
            sick[f"{r.contender}/{r.run_id}"] = "; ".join(notes)
    return sick


def study_result(study: StudyConfig, df: pd.DataFrame, evaluations: dict, infos: list[dict[str, Any]],
                 tuned: dict[str, dict[str, Any]] | None = None, *, incomplete: dict[str, Any] | None = None,
                 sequential: dict[str, Any] | None = None, leakage: dict[str, Any] | None = None) -> StudyResult:
    """The study's statistics from its runs: ``df`` one row per run (``report.tables.collect_results``),
    ``evaluations`` their saved predictions, ``infos`` their run.json; what the study directory adds:
    the runs still missing (``incomplete``), a sequential study's looks (``sequential``, sequential.json)
    and the data checks' leakage findings (``leakage``)."""
    ev = study.evaluation
    order = list(study.contenders)
    primary_col = f"test_{ev.primary}"
    comparison = compare_study(study, df, evaluations, infos, tuned) if len(df) else {}
    if comparison and incomplete:
        comparison["incomplete"] = incomplete
    sick = health_notes(df)
    if comparison and sick:
        comparison["health"] = sick
    if comparison and sequential and sequential.get("looks") \
            and sequential["looks"][-1]["seeds"] == len(study.protocol.seeds):
        from bakeoff.stats.sequential import apply_to_comparison

        apply_to_comparison(comparison, sequential, ev.alpha)  # a sequential study: the verdicts of its last look
    summary = summarize(df, order, {primary_col: comparison.get("contenders", {})}) if len(df) else pd.DataFrame()
    ranks = None
    if comparison and primary_col in df:
        designs = {p["design"]["test_sets"] for p in comparison.get("pairs", [])}
        independent = designs == {"disjoint"}
        ranks = rank_table(df, primary_col, order, metric_info(ev.primary, study.task).higher_is_better, independent)
        comparison["ranking"] = friedman_ranks(ranks, ev.alpha, independent)
    if comparison and leakage is not None:
        comparison["fairness"]["leakage"] = leakage
    if comparison:  # rank stability, significance map, calibration
        comparison.update(study_summary(study, df, evaluations, comparison))
        validate(comparison)  # every key declared (stats.results): what comparison.json promises its readers
    return StudyResult(comparison, summary, run_intervals(study, df, evaluations), ranks)


def suite_result(name: str, comparisons: dict[str, dict[str, Any]], runs: dict[str, dict[str, list[float]]],
                 cost: dict[str, Any], *, alpha: float, normalise: str, contenders: list[str],
                 overrides: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every number of ``suite.json`` from the datasets' comparisons (``comparisons``, in the suite's order)
    and their runs' primary scores (``runs``: dataset -> contender -> scores): the answer across datasets
    (``stats.meta.suite_comparison``) and the summaries beside it, validated against
    ``stats.suite_results.Suite``. ``ValueError``: normalise: relative with a reference score of 0."""
    from bakeoff.stats.aggregate import suite_summaries
    from bakeoff.stats.meta import suite_comparison
    from bakeoff.stats.suite_results import validate as validate_suite

    result = suite_comparison(comparisons, alpha, normalise)
    first = next(iter(comparisons.values()))
    contenders = list(first.get("contenders") or contenders)
    higher = bool(first["pairs"][0]["higher_is_better"]) if first.get("pairs") else True
    reference = first.get("baseline") or contenders[0]
    result["summaries"] = suite_summaries(runs, comparisons, contenders, str(result["primary"]), higher, alpha,
                                          relative=reference if normalise == "relative" else None)
    result["primaries"] = {n: c["primary"] for n, c in comparisons.items()}
    if len(set(result["primaries"].values())) > 1:  # normalise: relative (checked before training)
        result["primary"] = " / ".join(dict.fromkeys(result["primaries"].values()))
    result["name"] = name
    result["overrides"] = overrides
    result["reports"] = {n: f"datasets/{n}/report.html" for n in comparisons}
    result["cost"] = cost
    validate_suite(result)
    return result
