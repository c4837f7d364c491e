"""Rebuild every table and plot of a study from its run directories (no training)."""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bakeoff.config import StudyConfig
from bakeoff.errors import BakeoffError
from bakeoff.report import plots
from bakeoff.report.tables import collect_results
from bakeoff.report.words import to_decide_text
from bakeoff.runs.store import DATA_CHECKS_FILE, DONE, SEQUENTIAL_FILE, StudyStore
from bakeoff.runs.tuning import load_tuned
from bakeoff.stats.design import ONE_RUN_NOTE
from bakeoff.stats.study import study_result
from bakeoff.stats.tables import paired_differences
from bakeoff.tasks import metric_info, overall_metrics, resolve_study, task_class
from bakeoff.utils import atomic_write_text, read_json, write_json

RESULTS_FILE = "results.csv"
SUMMARY_FILE = "summary.csv"
COMPARISON_FILE = "comparison.json"
INTERVALS_FILE = "intervals.csv"


@dataclass
class StudyReport:
    study: StudyConfig
    results: pd.DataFrame
    summary: pd.DataFrame
    comparison: dict[str, Any] = field(default_factory=dict)
    plots: list[Path] = field(default_factory=list)
    saved: bool = True  # False: computed from a read-only directory, nothing written

    @property
    def failed(self) -> pd.DataFrame:
        """The runs that ended in failure (not the ones still running or waiting: ``comparison["incomplete"]``)."""
        return self.results[self.results["status"] == "failed"] if len(self.results) else self.results

    def table(self) -> pd.DataFrame:
        """Mean and std of every metric per contender: one row per contender."""
        if self.summary.empty:
            return pd.DataFrame()
        wide = self.summary.pivot(index="contender", columns="metric", values=["mean", "std"])
        wide.columns = [f"{m}_{stat}" for stat, m in wide.columns]
        return wide.loc[[c for c in self.study.contenders if c in wide.index]]


def build_report(store: StudyStore, study: StudyConfig, make_plots: bool = True, write: bool = True) -> StudyReport:
    """Tables, statistics and (with ``make_plots``) figures and report.html from the saved predictions;
    without ``write`` nothing is written (a read-only study directory): the report is only returned."""
    make_plots = make_plots and write  # figures and the page are files

    def put_text(path: Path, text: str) -> None:
        if write:
            atomic_write_text(path, text)

    order = list(study.contenders)
    ev = study.evaluation
    with plots.saving_in_background() if make_plots else nullcontext():  # every figure on disk after it
        df, evaluations = collect_results(store, study.task, ev.threshold, order, ev.val_threshold, ev)
        made: list[Path] = []
        if make_plots and evaluations:  # first, so that forked writers encode them while the statistics run
            made += _run_figures(store, study, df, evaluations, order)
        sequential, checks = store.root / SEQUENTIAL_FILE, store.root / DATA_CHECKS_FILE
        infos = store.all_run_infos()
        result = study_result(study, df, evaluations, infos, load_tuned(store, order),
                              incomplete=incomplete(store, df),
                              sequential=read_json(sequential) if sequential.is_file() else None,
                              leakage=read_json(checks) if checks.is_file() else None)
        comparison, summary, ranks_table = result.comparison, result.summary, result.ranks
        put_text(store.root / RESULTS_FILE, df.to_csv(index=False))
        put_text(store.root / SUMMARY_FILE, summary.to_csv(index=False))
        if write:
            write_json(store.root / COMPARISON_FILE, comparison)
            write_results_table(store.root, study, df, summary)
        put_text(store.root / INTERVALS_FILE, result.intervals.to_csv(index=False))
        if make_plots and evaluations and (comparison.get("ranking") or {}).get("p_value") is not None:
            made.append(plots.cd_diagram(ranks_table, comparison["ranking"],
                                         store.root / "plots" / "critical_difference.png"))
        report = StudyReport(study, df, summary, comparison, made, saved=write)
        if make_plots:
            try:
                write_page(store, report, infos)
            except Exception as exc:  # noqa: BLE001 - the page must never cost the study its results
                import warnings

                from bakeoff.errors import storage_full
                if storage_full(exc):  # a full disk is the user's to fix, and said as one line (cli.main)
                    raise

                # (the test suite turns this warning into an error: tests/conftest.py)
                warnings.warn(f"report.html could not be built: {type(exc).__name__}: {exc}", stacklevel=2)
    return report


def _run_figures(store: StudyStore, study: StudyConfig, df: pd.DataFrame, evaluations: dict, order: list[str]
                 ) -> list[Path]:
    """The figures drawn from the runs alone: training curves, metric bars and the task's own figures."""
    out = store.root / "plots"
    primary_monitor = study.protocol.select.monitor.split("/", 1)[1]
    made = [plots.training_curves(store, df, order, primary_monitor, out),
            plots.metric_bars(df, order, study.evaluation.threshold, out, study.task)]
    for figure in task_class(study.task).figures:  # the figures the task declares (Task.figures)
        drawn = plots.TASK_FIGURES[figure](store, study, df, evaluations, order, out)
        made.extend(p for p in (drawn if isinstance(drawn, list) else [drawn]) if p is not None)
    return made


FIGURE_CAPTIONS = {
    "training_curves": "Training curves per contender: mean over runs, band from min to max.",
    "metric_bars": "Test metrics, mean ± std over runs, the bars cut at each metric's range (dots: runs).",
    "confusion_matrices": "Confusion matrices on test, summed over runs.",
    "roc_curves": "ROC and precision-recall curves on test, one line per run.",
    "reliability": "Reliability diagrams with expected calibration error (torchmetrics, 10 equal-width bins).",
    "per_class_dice": "Per-class Dice, mean over runs.",
    "qualitative": "Qualitative predictions on validation images.",
    "ap_vs_iou": "Instance segmentation: AP (TP / (TP + FP + FN), mean over test images) at each IoU threshold.",
    "feature_maps": "Feature maps of the named layer.",
}


def _costs(df: pd.DataFrame, infos: list[dict[str, Any]], order: list[str], primary_col: str) -> pd.DataFrame:
    """One row per contender: the primary metric and the cost columns, means over done runs; training
    device-hours = training time x the devices the run trained on."""
    done = df[df["status"] == DONE].copy() if len(df) else df
    if not len(done):
        return pd.DataFrame()
    by_run = {(i.get("contender"), i.get("run_id")): i for i in infos}
    world = [((by_run.get((r["contender"], r["run_id"])) or {}).get("training") or {}).get("world_size", 1) or 1
             for _, r in done.iterrows()]
    done["device_hours"] = done["train_time_s"].astype(float) * np.asarray(world, dtype=float) / 3600
    cols = [c for c in ("n_parameters", "flops_per_sample", "train_time_s", "device_hours", "peak_memory_mb",
                        "latency_ms", "throughput_per_s") if c in done]
    out = done.groupby("contender")[[primary_col] + cols].agg(lambda x: pd.to_numeric(x, errors="coerce").mean())
    out = out.rename(columns={primary_col: primary_col[5:]})
    return out.loc[[c for c in order if c in out.index]]


def write_page(store: StudyStore, report: StudyReport, infos: list[dict[str, Any]]) -> Path:
    """DIR/report.html (and the figures only it shows: rank stability, significance map, reliability,
    quality vs cost)."""
    from bakeoff.report import html
    from bakeoff.report.methods import methods_paragraph

    study, df, comparison = report.study, report.results, report.comparison
    ev = study.evaluation
    order = [c for c in study.contenders if len(df) and c in set(df["contender"])]
    out = store.root / "plots"
    colours = plots._colors(list(study.contenders))
    checks = read_json(store.root / DATA_CHECKS_FILE) if (store.root / DATA_CHECKS_FILE).is_file() else {}
    # the page draws what the comparison holds (bakeoff.stats.summary); it computes no statistic
    stability = comparison.get("rank_stability")
    blob = plots.rank_blobs(stability, list(study.contenders), out) if stability else None
    sig = comparison.get("significance_map")
    sig_fig = plots.significance_plot(sig, ev.primary, out) if sig else None
    rel = plots.reliability(comparison["calibration"], order, out) if comparison.get("calibration") else None
    scatter = None
    costs = _costs(df, infos, order, f"test_{ev.primary}")
    if len(costs):
        scatter = plots.quality_vs_cost(costs, list(study.contenders), ev.primary,
                                        metric_info(ev.primary, study.task).higher_is_better, out)
    plots.figsave.wait()  # the page embeds the PNGs: each one on disk first
    shown = [Path(p) for p in report.plots if Path(p).stem != "critical_difference"]
    cd = next((p for p in report.plots if Path(p).stem == "critical_difference"), None)
    if rel is not None:  # beside the ROC curves (the discrimination), else last
        at = next((i + 1 for i, p in enumerate(shown) if p.stem == "roc_curves"), len(shown))
        shown.insert(at, rel)
    figs = [html.figure(p, FIGURE_CAPTIONS.get(p.stem) or (f"Grad-CAM of {p.stem}: the same validation images "
                                                           f"for every contender, taken across classes"
                                                           if "gradcam" in p.parts else p.stem.replace("_", " ")))
            for p in shown]
    report.plots.extend(p for p in (blob, sig_fig, rel, scatter) if p is not None)
    paragraph, bibtex = methods_paragraph(study, infos, comparison, checks, stability)
    atomic_write_text(store.root / "methods.txt", paragraph + "\n\n" + bibtex + "\n")
    parts = [
        html.header_section(study, infos, checks),
        html.answer_section(study, comparison, report.summary, colours, order, stability),
        html.stability_section(stability, sig_fig, blob, comparison.get("ranking"), cd,
                               (comparison.get("significance_map") or {}).get("family", "")),
        html.fairness_section(fairness_lines(report), comparison.get("fairness")),
        html.metrics_section(report.summary, order, colours, overall_metrics(study.task), study.task),
        '<section id="figures"><h2>Figures</h2>' + ("".join(figs) or "<p>No figures.</p>") + "</section>",
        html.cost_section(costs, order, colours, scatter),
        html.list_section("failures", "Failures and run health", failure_lines(report) + health_lines(report),
                          "none: every run finished, none collapsed"),
        html.methods_section(paragraph, bibtex),
    ]
    path = store.root / html.REPORT_FILE
    atomic_write_text(path, html.page(f"{study.name}: bake-off report", parts))
    return path


def write_results_table(root: Path, study: StudyConfig, df: pd.DataFrame, summary: pd.DataFrame) -> None:
    """results_table.csv / .txt (one row per contender: test metrics as mean and std over runs, with
    parameters and timings) and results.json (the same plus every run's test metrics)."""
    import json

    order = [c for c in study.contenders if len(summary) and c in set(summary["contender"])]
    primary = study.evaluation.primary
    overall = overall_metrics(study.task)
    names = [primary] + [m for m in overall if m != primary]
    per_class = sorted({m[5:] for m in summary.get("metric", []) if m.startswith("test_") and m[5:] not in overall
                        and not m[5:].startswith("n_undefined") and "@" not in m})
    metrics = [m for m in names if len(summary) and f"test_{m}" in set(summary["metric"])] + per_class
    costs = ["n_parameters", "train_time_s", "latency_ms", "throughput_per_s"]
    rows, text_rows, nested = [], [], {}
    for c in order:
        sub = summary[summary["contender"] == c].set_index("metric")
        row: dict[str, Any] = {"contender": c, "runs": int(sub["n"].max()) if len(sub) else 0}
        text: dict[str, Any] = {"contender": c, "runs": row["runs"]}
        nested[c] = {}
        for m in metrics + costs:
            col = f"test_{m}" if m in metrics else m
            if col not in sub.index:
                continue
            mean, std = float(sub.loc[col, "mean"]), float(sub.loc[col, "std"])
            row[f"{m}_mean"], row[f"{m}_std"] = mean, std
            nested[c][m] = {"mean": mean, "std": None if np.isnan(std) else std, "n": int(sub.loc[col, "n"])}
            if m in ("n_parameters",):
                text[m] = f"{mean:,.0f}"
            else:
                text[m] = f"{mean:.4f}" + ("" if np.isnan(std) else f" ± {std:.4f}")
        rows.append(row)
        text_rows.append(text)
    table = pd.DataFrame(rows)
    atomic_write_text(root / "results_table.csv", table.to_csv(index=False))
    header = (f"{study.name}: test metrics, mean ± std over runs (primary: {primary}; task {study.task})\n")
    atomic_write_text(root / "results_table.txt", header + (pd.DataFrame(text_rows).to_string(index=False)
                                                            if text_rows else "(no completed runs)") + "\n")
    done = df[df["status"] == DONE] if len(df) else df
    runs = json.loads(done.to_json(orient="records")) if len(done) else []
    write_json(root / "results.json", {"study": study.name, "task": study.task, "primary": primary,
                                       "contenders": nested, "runs": runs})


def terminal_table(report: StudyReport) -> Any:
    """A rich table: rows are test metrics, columns are contenders (mean ± std) and paired differences."""
    from rich.table import Table


    study = report.study
    order = [c for c in study.contenders if c in set(report.summary.get("contender", []))]
    base = study.baseline
    thr = ("" if not task_class(study.task).thresholded else
           f" (threshold {study.evaluation.threshold} for threshold-dependent metrics)")
    t = Table(title=f"{study.name}: test metrics, mean ± std over runs{thr}")
    t.add_column("metric")
    for c in order:
        t.add_column(f"{c}{' (baseline)' if c == base else ''}", justify="right")
    others = [c for c in order if c != base]
    for c in others:
        t.add_column(f"Δ {c} − {base}\n(paired by seed, fold)", justify="right")
    s = report.summary.set_index(["contender", "metric"]) if len(report.summary) else None
    df = report.results[report.results["status"] == DONE]

    def cell(c: str, col: str, fmt: str) -> str:
        if s is None or (c, col) not in s.index:
            return "–"
        r = s.loc[(c, col)]
        std = "" if pd.isna(r["std"]) or r["std"] == 0 else f" ± {r['std']:{fmt}}"
        return f"{r['mean']:{fmt}}{std}"

    primary = study.evaluation.primary
    names = [primary] + [m for m in overall_metrics(study.task) if m != primary]
    for m in names:
        col = f"test_{m}"
        if col not in df:
            continue
        label = f"[bold]{m}[/bold] (primary)" if m == primary else m
        if not metric_info(m, study.task).threshold_free and task_class(study.task).thresholded:
            label += " @thr"
        diffs = paired_differences(df, base, col)
        row = [cell(c, col, ".3f") for c in order]
        for c in others:
            d = diffs.get(c, {})
            sign = "" if metric_info(m, study.task).higher_is_better else " (lower is better)"
            sd = "" if pd.isna(d.get("std")) else f" ± {d['std']:.3f}"
            row.append(f"{d.get('mean', float('nan')):+.3f}{sd}{sign}")
        t.add_row(label, *row)
    for m in names:
        col = f"test_{m}@val_thr"
        if col in df:
            t.add_row(f"{m} @val-chosen thr", *[cell(c, col, ".3f") for c in order], *["" for _ in others])
    for col, fmt, label in (("n_parameters", ",.0f", "parameters"), ("train_time_s", ".1f", "train time (s)"),
                            ("latency_ms", ".3f", "latency (ms/sample)"),
                            ("throughput_per_s", ",.0f", "throughput (samples/s)")):
        if col in df:
            t.add_row(label, *[cell(c, col, fmt) for c in order], *["" for _ in others])
    return t


def verdict_table(report: StudyReport) -> Any:
    """A rich table of the verdicts on the primary metric, one row per compared pair."""
    return verdict_table_rows(report.comparison, report.study.evaluation)


def verdict_table_rows(comp: dict[str, Any], ev: Any) -> Any:
    from rich.table import Table

    from bakeoff.report.html import verdict_mark

    t = Table(title=f"Verdicts on {comp.get('primary')} (test; {1 - ev.alpha:.0%} intervals; "
                    f"min_effect {ev.min_effect:g})")
    for col in ("", "pair", "difference [CI]", "p (Holm)", "verdict", "to decide"):
        t.add_column(col)
    for p in comp.get("pairs", []):
        colour = ("green" if p["verdict"].startswith(f"{p['a']} better") else "red" if "better" in p["verdict"]
                  else "cyan" if "equivalent" in p["verdict"] else "yellow")
        p_text = f"{p['p_value']:.4f} ({p['p_value_holm']:.4f})"
        if p.get("min_effect"):
            p_text = f"{p['p_value']:.4f}; vs margin {p['p_margin']:.4f} ({p['p_value_holm']:.4f})"
        verdict_text = f"[{colour}]{p['verdict']}[/{colour}]"
        if p.get("unreachable"):
            verdict_text += f"\n{p['unreachable']}"
        t.add_row(f"[{colour}]{verdict_mark(p)}[/{colour}]", f"{p['a']} − {p['b']}",
                  f"{p['difference']:+.4f} [{p['ci_low']:+.4f}, {p['ci_high']:+.4f}]",
                  p_text, verdict_text, to_decide_text(p))
    return t


def design_lines(comparison: dict[str, Any]) -> list[str]:
    """Per pair, the statistical model that gave the verdict: the design, degrees of freedom, where the
    variance comes from, and anything the design cannot say."""
    lines = []
    for p in comparison.get("pairs", []):
        d = p.get("design") or {}
        comp = d.get("components") or {}
        groups = comp.get("groups") or []
        runs = sum(g["runs"] for g in groups)
        sizes = {g["test_units"] for g in groups}
        shape = (f"{runs} run(s) on {len(groups)} {d.get('test_sets')} test set(s) of "
                 f"{'/'.join(str(n) for n in sorted(sizes))} {p.get('unit', 'sample')}s")
        line = f"{p['a']} − {p['b']}: {shape}; t on {p['df']:.1f} df"
        shares = d.get("variance_shares")
        if shares:
            line += "; variance from " + ", ".join(f"{k.replace('_', ' ')} {v:.0%}" for k, v in shares.items())
        for note in d.get("notes", []):
            if not (note == ONE_RUN_NOTE and p.get("scope_text")):  # the verdict's scope below says it
                line += f"; {note}"
        if p.get("degenerate"):
            line += f"; {p['degenerate']}"
        if p.get("scope"):
            line += f"; verdict {p.get('scope_text', p['scope'])}"
        lines.append(line)
    if comparison.get("sequential"):
        lines.append(comparison["sequential"]["text"])
    return lines


def across_run_lines(report: StudyReport) -> list[str]:
    """Per pair, the tests across runs, with what they cannot say when there are too few runs."""
    lines = []
    for p in report.comparison.get("pairs", []):
        ar = p.get("across_runs", {})
        parts = []
        bca = ar.get("bca", {})
        parts.append(f"BCa CI [{bca['ci_low']:+.4f}, {bca['ci_high']:+.4f}]" if bca.get("ci_low") is not None
                     else f"BCa CI: {bca.get('note')}")
        ct = ar.get("correlated_ttest", {})
        parts.append(f"P({p['a']} better) = {ct['p_a_better']:.3f}, P(equivalent) = {ct['p_equivalent']:.3f} "
                     f"(Bayesian correlated t-test)" if "p_a_better" in ct else f"correlated t-test: {ct.get('note')}")
        wx = ar.get("wilcoxon", {})
        parts.append(f"Wilcoxon p = {wx['p_value']:.4f}" if wx.get("p_value") is not None
                     else f"Wilcoxon {wx.get('note')}")
        if ar.get("note"):
            parts = [ar["note"]]
        lines.append(f"{p['a']} − {p['b']} across {len(ar.get('differences', []))} independent test set(s): "
                     + "; ".join(parts))
    return lines


def ranking_line(report: StudyReport) -> str | None:
    r = report.comparison.get("ranking")
    if not r:
        return None
    ranks = ", ".join(f"{c} {v:.2f}" for c, v in sorted(r["average_ranks"].items(), key=lambda kv: kv[1]))
    line = f"average ranks on {report.comparison['primary']} (1 = best): {ranks} over {r['n_blocks']} blocks"
    if r.get("p_value") is None:
        return line + " (ranks only: the blocks share one test set, so no Friedman test)"
    return (line + f"; Friedman p = {r['p_value']:.3g}; Nemenyi CD {r['nemenyi_critical_difference']:.2f} "
            f"(a picture of the pool: verdicts come from the paired tests above)")


def incomplete(store: StudyStore, df: pd.DataFrame) -> dict[str, Any] | None:
    """The planned runs not done yet (pending, queued, running, interrupted) when there are any: the
    report is then of an unfinished study, its verdicts provisional."""
    plan = store.read_plan()
    if not plan:
        return None
    if len(df) >= len(plan) and set(df["status"]) <= {DONE, "failed"}:  # the usual, finished study: no second
        return None  # reading of every run.json, no scheduler query
    from bakeoff.runs.status import run_states

    states = run_states(store, plan)
    left = [{"run": r.key, "state": st.state} for r, st in zip(plan, states) if st.state not in (DONE, "failed")]
    if not left:
        return None
    done = sum(st.state == DONE for st in states)
    counts: dict[str, int] = {}
    for x in left:
        counts[x["state"]] = counts.get(x["state"], 0) + 1
    text = (f"incomplete: {done} of {len(plan)} runs done ({', '.join(f'{v} {k}' for k, v in counts.items())}); "
            f"the verdicts are provisional, computed on the runs both contenders of a pair share")
    return {"done": done, "planned": len(plan), "not_done": left, "text": text}


def _flagged(runs: Any, column: str) -> int:
    """How many of ``runs`` (rows of results.csv) carry a note in ``column``."""
    return int(runs[column].fillna("").astype(str).astype(bool).sum()) if column in runs else 0


def health_lines(report: StudyReport) -> list[str]:
    """One line per run whose predictions look broken (``Task.health``), and per contender what that means
    for its spread."""
    sick = report.comparison.get("health") or {}
    lines = [f"run health: {key}: {text}" for key, text in sick.items()]
    done = report.results[report.results["status"] == DONE] if len(report.results) else report.results
    if "timing_note" in report.results:
        noted = report.results[report.results["timing_note"].fillna("").astype(bool)]
        if len(noted):
            lines.append(f"timings: {len(noted)} of {len(report.results)} runs were timed under conditions that make "
                         f"latency and throughput unreliable (" + "; ".join(
                             f"{r.contender}/{r.run_id}: {r.timing_note}" for r in noted.head(3).itertuples())
                         + (" …" if len(noted) > 3 else "") + "); compare speed from a quiet machine")
    for c in (report.study.contenders if "contender" in done else []):
        mine = done[done["contender"] == c]
        n, chance, of = _flagged(mine, "health"), _flagged(mine, "val_chance"), len(mine)
        if n:
            lines.append(f"  {c}: {n} of {of} finished runs collapsed; its mean and spread over seeds include them "
                         f"(look at why before trusting its verdicts)")
        if chance:
            lines.append(f"  {c}: {chance} of {of} finished runs never left chance on validation (train longer, or "
                         f"check the learning rate and the labels); its mean and spread include them")
    return lines


def failure_lines(report: StudyReport) -> list[str]:
    """One line per failed run, with its reason (results.csv keeps them too: status, error)."""
    failed = report.failed
    if not len(failed):
        return []
    return [f"failed: {r['contender']} seed {r['seed']} fold {r['fold']}: {r.get('error')}"
            for _, r in failed.iterrows()]


def fairness_lines(report: StudyReport) -> list[str]:
    fair = report.comparison.get("fairness")
    if not fair:
        return []
    lines = [f"fairness: {len(fair['identical'])} settings identical for every contender "
             f"(splits, seeds, protocol, device, how training ran)"]
    streams = fair.get("seed_streams") or {}
    if streams.get("value"):
        lines.append(f"  seed streams: {streams['value']}: {streams['seed_spread']}")
    det = {k: v for k, v in fair["identical"].items() if k.startswith("training.determinism.mode")}
    if det:
        lines.append(f"  determinism: {det['training.determinism.mode']} for every run (strict: deterministic kernels "
                     f"throughout; warn: ops without one ran anyway; off)")
    leak = fair.get("leakage") or {}
    if leak.get("exact_duplicates"):
        lines.append(f"  LEAKAGE: {len(leak['exact_duplicates'])} pixel-identical samples across split parts "
                     f"kept by data.allow_duplicates (listed in comparison.json → fairness.leakage)")
    if leak.get("groups_across_parts"):
        lines.append(f"  LEAKAGE: {len(leak['groups_across_parts'])} groups appear in more than one split part")
    if fair.get("tuning", {}).get("mode", "none") != "none":
        t = fair["tuning"]
        lines.append(f"  tuning: {t['mode']}, {t['trials_per_contender']} Optuna trials per contender over "
                     f"{', '.join(t['space'])}, judged on {t['judged_on']}")
    for key, values in fair["deviations"].items():
        tag = ("tuned (equal budget)" if values.get("tuned") else
               "declared override" if values.get("declared") else
               "follows from the architecture" if values.get("by_architecture") else "UNDECLARED deviation")
        shown = ", ".join(f"{c}={v}" for c, v in values.items() if c not in ("declared", "tuned", "by_architecture"))
        lines.append(f"  {tag}: {key}: {shown}")
    return lines


def _check_runs_belong(store: StudyStore, study: StudyConfig) -> None:
    """A study directory whose study.yaml was replaced by another study's: none of its trained runs is of
    a contender (name, model, params) of that file trained with the protocol that file gives it (seeds
    aside; tuned values as the tuning left them), and reporting it would report nothing, or report runs
    under settings they were not trained with."""
    from bakeoff.runs.store import RUN_FILE, STUDY_FILE

    infos = [read_json(p) for p in sorted((store.root / "runs").glob(f"*/*/{RUN_FILE}"))]
    if not infos:
        return
    own = {name: (c.model, c.params) for name, c in study.contenders.items()}
    tuned = load_tuned(store, list(study.contenders))

    def same(info: dict[str, Any]) -> bool:
        name = info.get("contender")
        if own.get(name) != (info.get("model"), info.get("params")):
            return False
        if not isinstance(info.get("protocol"), dict):  # a run.json of an older version: the contender decides
            return True
        want = study.protocol_for(name, tuned.get(name)).model_dump(mode="json")
        got = dict(info["protocol"])
        want.pop("seeds", None)
        got.pop("seeds", None)
        return want == got

    if not any(same(i) for i in infos):
        theirs = sorted({f"{i.get('contender')} ({i.get('model')})" for i in infos})
        raise BakeoffError(
            f"{store.root / STUDY_FILE}: study {study.name!r} does not match any of the {len(infos)} runs in "
            f"{store.root / 'runs'} (they are of {', '.join(theirs[:4])}, each trained with the settings its "
            f"run.json records); expected the study file these runs were trained with: was study.yaml replaced? "
            f"Put the original back, or report that other study from its own directory")


def rebuild_report(out: str | Path, make_plots: bool = True) -> StudyReport:
    """Rebuild tables and plots of a finished (or partial) study directory without training. Where each run
    kept its scores (scores.npz) it reads them with the saved predictions, and imports neither torch nor
    Lightning; where not (directories of older versions), it recomputes them once and keeps them."""
    store = StudyStore(out)
    study = resolve_study(store.saved_study())  # (a hand-placed study file leaves defaults to its task)
    _check_runs_belong(store, study)
    if not os.access(store.root, os.W_OK | os.X_OK):  # an archived, read-only study: report, write nothing
        import warnings

        warnings.warn(f"{store.root}: the directory cannot be written (read-only); the report below is computed "
                      f"from the saved predictions but nothing was saved", stacklevel=2)
        return build_report(store, study, make_plots, write=False)
    if store.is_locked():  # a run in progress: report its finished runs (every file is written atomically)
        return build_report(store, study, make_plots)
    store.lock()
    try:
        return build_report(store, study, make_plots)
    finally:
        store.unlock()
