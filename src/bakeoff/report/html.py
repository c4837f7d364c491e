"""DIR/report.html: one self-contained page (figures embedded as data URIs, no network fetch, a few lines
of inline JavaScript to sort tables), the answer first. Built from what the runs saved; nothing here
trains. Sections, in order: header, answer, ranking stability, fairness, metrics, figures, cost,
failures, methods (with BibTeX)."""

from __future__ import annotations

import base64
import html
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bakeoff.runs.store import DONE
from bakeoff.tasks import metric_info

REPORT_FILE = "report.html"
SECTIONS = ("header", "answer", "stability", "fairness", "metrics", "figures", "cost", "failures", "methods")

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:18px 28px 60px}
h1{font-size:24px;margin:6px 0 2px}h2{font-size:18px;margin:30px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}.meta{color:#555;font-size:12.5px}.meta span{margin-right:14px}
table{border-collapse:collapse;margin:8px 0;font-size:13px;background:#fff}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f0f0f0;cursor:pointer}
td:first-child,th:first-child{text-align:left}.answer{background:#fff;border:1px solid #ccd;padding:10px 16px;
border-radius:6px}.verdict{font-size:15px;margin:6px 0}.better{color:#17803d}.worse{color:#b42318}
.equivalent{color:#175cd3}.inconclusive{color:#8a6d00}figure{margin:12px 0;background:#fff;padding:8px;
border:1px solid #e3e3e3;border-radius:4px}figure img{max-width:100%;height:auto}figcaption{font-size:12.5px;
color:#444}pre{background:#f4f4f4;padding:10px;overflow-x:auto;font-size:12px;white-space:pre-wrap}
.swatch{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:5px;vertical-align:middle}
ul{margin:4px 0 4px 18px;padding:0}.note{color:#555;font-size:12.5px}
th[title],p[title]{text-decoration:underline dotted #999;cursor:help}p[title]{text-decoration:none}
"""

# Sort a table by the clicked column (numbers where both cells parse as numbers, else text).
SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function(th){th.addEventListener('click',function(){
var t=th.closest('table'),b=t.tBodies[0],i=Array.prototype.indexOf.call(th.parentNode.children,th),
d=th.dataset.dir==='asc'?-1:1;th.dataset.dir=d===1?'asc':'desc';
Array.from(b.rows).sort(function(r,s){var x=r.cells[i].dataset.v||r.cells[i].textContent,
y=s.cells[i].dataset.v||s.cells[i].textContent,a=parseFloat(x),c=parseFloat(y);
return (isNaN(a)||isNaN(c)?x.localeCompare(y):a-c)*d;}).forEach(function(r){b.appendChild(r);});});});
"""


def esc(x: Any) -> str:
    return html.escape(str(x))


def _img(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{esc(Path(path).stem)}">'


def figure(path: Path | None, caption: str) -> str:
    if path is None or not Path(path).is_file():
        return ""
    return f"<figure>{_img(path)}<figcaption>{esc(caption)}</figcaption></figure>"


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    v = float(v)
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def _rank(v: Any) -> str:
    """A rank as people write it: 1, 2, 3; a tie's shared mean rank with its half (1.5)."""
    if isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(v) and float(v).is_integer():
        return str(int(v))
    return _fmt(v, 1)


def si(v: float, digits: int = 3) -> str:
    """``v`` with three significant digits and an SI prefix (355 k, 1.23 G, 0.5)."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= factor:
            return f"{v / factor:.{digits}g} {prefix}"
    return f"{v:.{digits}g}"


# One line on how to read each statistic a report shows, given on hover over its column head (a header's
# leading "95% " is dropped before the lookup); metric columns take their registered description instead.
GLOSSARY = {
    "CI": "The range that holds the contender's true mean score with this confidence, from the same design-aware "
          "model as the verdicts (runs that share test samples are not counted as independent); it stays within "
          "the metric's range.",
    "std over runs": "Standard deviation of the score across this contender's runs (seeds x folds): how far a "
                     "rerun of the same recipe moves it.",
    "runs": "Finished runs (seeds x folds) the numbers come from.",
    "rank": "Rank on the primary metric, 1 = best; ties share the mean rank.",
    "mean bootstrap rank": "The contender's rank averaged over resamples of the test units (and runs): below "
                           "its rank when resamples often put it higher.",
    "rank interval": "The ranks the contender takes in the middle 95 % of resamples: a wide interval means the "
                     "data cannot place it.",
    "ranked first": "The share of resamples in which this contender comes first.",
    "mean rank": "Its rank within each dataset (1 = best), averaged over datasets.",
    "Wilcoxon p (Holm)": "Wilcoxon signed-rank test of the two contenders' per-dataset scores, Holm-adjusted over "
                         "the pairs: small means one is ahead on most datasets.",
    "mean difference": "The plain mean over datasets of A's score minus B's, each dataset counted once (not "
                       "weighted by its precision: bakeoff.stats.meta says why).",
    "prediction (new dataset)": "Where the difference on a new dataset like these would fall, 95 % of the time: "
                                "wider than the CI because datasets differ.",
    "τ² / I²": "τ²: the variance of the true difference between datasets; I²: the share of the spread that is "
               "between datasets rather than noise.",
    "per dataset: A / B better / ≈ / ?": "How many datasets' own verdicts say A better, B better, equivalent, "
                                        "inconclusive.",
    "p (Holm)": "p-value of the test that the difference is zero, Holm-adjusted over the pairs compared.",
    "verdict": "better / worse: the interval lies beyond the margin; equivalent: within it; inconclusive: neither.",
    "IQM": "Interquartile mean: the mean of the middle 50 % of all runs of all datasets, robust to outlier runs.",
    "IQM interval": "Stratified-bootstrap interval of the IQM (runs resampled within each dataset).",
    "mean": "The plain mean over all runs of all datasets.",
    "mean interval": "Stratified-bootstrap interval of the mean (runs resampled within each dataset).",
    "P(A > B)": "The chance that a run of A scores above a run of B on the same dataset (ties count a half), "
                "averaged over datasets.",
    "interval": "Stratified-bootstrap interval of the statistic on its left.",
    "training hours": "Wall-clock training time summed over the contender's runs on every dataset.",
    "parameters": "Trainable parameters of the network.",
    "FLOPs / sample": "Floating-point operations of one forward pass of one sample (a multiply-add counts 2).",
    "training time (s)": "Wall-clock time to train one run, mean over runs.",
    "device-hours": "Training time multiplied by the devices it used, mean over runs.",
    "peak memory (MB)": "Most memory the run held while training: allocated on the GPU, or the process's peak "
                        "resident memory on a CPU (which includes the data held in memory).",
    "latency (ms / sample)": "Time to predict one sample (batch 1), after warm-up, median of repeats; a run "
                              "is flagged when other processes used over a quarter of the CPU time meanwhile, "
                              "or its repeats spread over half their median.",
    "throughput (samples / s)": "Samples predicted per second at the study's batch size, after warm-up, median of "
                                "repeats.",
}


def tip(header: str, tips: dict[str, str] | None = None) -> str:
    """The one-line explanation of a column head ('' when it needs none: names, settings)."""
    import re

    if tips and header in tips:
        return tips[header]
    return GLOSSARY.get(header) or GLOSSARY.get(re.sub(r"^\d+(\.\d+)?% ", "", header), "")


def table(headers: list[str], rows: list[list[Any]], sortable: bool = True, tips: dict[str, str] | None = None) -> str:
    head = "".join(f'<th title="{esc(t)}">{esc(h)}</th>' if (t := tip(h, tips)) else f"<th>{esc(h)}</th>"
                   for h in headers)
    body = []
    for r in rows:
        cells = []
        for v in r:
            if isinstance(v, tuple):  # (shown text, sort value)
                cells.append(f'<td data-v="{esc(v[1])}">{v[0]}</td>')
            else:
                cells.append(f"<td>{v}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cls = ' class="sortable"' if sortable else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _swatch(colour: Any) -> str:
    from matplotlib.colors import to_hex

    return f'<span class="swatch" style="background:{to_hex(colour)}"></span>'


def points(metric_values: list[float]) -> tuple[float, str]:
    """Scores on [0, 1] are said in points (x100), as papers do; anything else as it is."""
    vals = [v for v in metric_values if v is not None and math.isfinite(v)]
    if vals and all(0 <= v <= 1 for v in vals):
        return 100.0, " points"
    return 1.0, ""


def verdict_mark(pair: dict[str, Any]) -> str:
    """✓ the first-named contender is better, ✗ worse, ≈ equivalent, ? inconclusive."""
    v = pair["verdict"]
    if v.startswith(f"{pair['a']} better"):
        return "✓"
    if v.startswith(f"{pair['b']} better"):
        return "✗"
    return "≈" if "equivalent" in v else "?"


def verdict_sentence(pair: dict[str, Any], scale: float, unit: str, label: str) -> tuple[str, str]:
    """A pair in plain words, and its CSS class (better / worse / equivalent / inconclusive)."""
    d, lo, hi = (pair[k] * scale for k in ("difference", "ci_low", "ci_high"))
    level = pair.get("ci_level", 0.95)
    p = pair.get("p_value_holm", pair.get("p_value"))
    margin = pair.get("min_effect") or 0
    p_text = "p < 0.001" if p is not None and p < 0.001 else f"p = {p:.3f}"
    against = f" against the {margin * scale:g}{unit.rstrip('s') if unit else ''} margin" if margin else ""
    text = (f"{pair['a']} vs {pair['b']}: {d:+.1f} {label}{unit}, {level:.0%} CI [{lo:+.1f}, {hi:+.1f}], "
            f"{p_text}{against} (Holm): ")
    v = pair["verdict"]
    mark = verdict_mark(pair)
    if mark in ("✓", "✗"):
        text += f"{v}" + (f", beyond the {margin * scale:g}{unit.rstrip('s') if unit else ''} margin" if margin else "")
        cls = "better" if mark == "✓" else "worse"
    elif mark == "≈":
        text += f"equivalent within ±{margin * scale:g}{unit}"
        cls = "equivalent"
    else:
        text += "inconclusive"
        cls = "inconclusive"
    return f"{mark} {text}", cls


def header_section(study: Any, infos: list[dict], checks: dict[str, Any]) -> str:
    done = [i for i in infos if i.get("status") == DONE]
    versions = (done[0] if done else (infos[0] if infos else {})).get("versions", {})
    devices = sorted({str(i.get("device")) for i in done if i.get("device")})
    gpus = sorted({g for i in done for g in (i.get("hardware") or {}).get("gpus", [])})
    cpus = sorted({f"{(i.get('hardware') or {}).get('cpu') or '?'} ({(i.get('hardware') or {}).get('cpu_count')} cores)"
                   for i in done if i.get("hardware")})
    hosts = sorted({str(i.get("host")) for i in done if i.get("host")})
    hw = ", ".join(gpus) if gpus else ", ".join(cpus) or "unknown"
    meta = [("task", study.task), ("data", study.data.source),
            ("data fingerprint", checks.get("data_fingerprint", "not recorded")),
            ("samples", checks.get("n_samples", "–")), ("built", time.strftime("%Y-%m-%d %H:%M %Z")),
            ("hardware", f"{hw}; device(s) {', '.join(devices) or '–'}; host(s) {', '.join(hosts) or '–'}"),
            ("versions", ", ".join(f"{k} {v}" for k, v in versions.items() if k != "platform")),
            ("platform", versions.get("platform", "–"))]
    spans = "".join(f"<span><b>{esc(k)}</b>: {esc(v)}</span>" for k, v in meta)
    return f'<section id="header"><h1>{esc(study.name)}: bake-off report</h1><div class="meta">{spans}</div></section>'


def answer_section(study: Any, comparison: dict, summary: pd.DataFrame, colours: dict, order: list[str],
                   stability: dict | None) -> str:
    ev = study.evaluation
    primary = ev.primary
    col = f"test_{primary}"
    intervals = comparison.get("contenders", {})
    s = summary[summary["metric"] == col].set_index("contender") if len(summary) else pd.DataFrame()
    values = [float(s.loc[c, "mean"]) for c in order if c in s.index]
    scale, unit = points(values)
    rank = (stability or {}).get("rank") or {}
    rows = []
    for c in order:
        if c not in s.index:
            continue
        ci = intervals.get(c, {})
        ci_text = (f"[{ci['ci_low']:.4f}, {ci['ci_high']:.4f}]" if ci.get("ci_low") is not None else "–")
        rows.append([f"{_swatch(colours[c])}{esc(c)}", (f"{s.loc[c, 'mean']:.4f}", s.loc[c, "mean"]), ci_text,
                     (_fmt(s.loc[c, "std"]), s.loc[c, "std"]), int(s.loc[c, "n"]),
                     (_rank(rank.get(c)), rank.get(c, ""))])
    level = f"{1 - ev.alpha:.0%}"
    missing = comparison.get("incomplete")
    left = ", ".join(f"{x['run']} ({x['state']})" for x in missing["not_done"][:12]) if missing else ""
    if missing and len(missing["not_done"]) > 12:
        left += " …"
    out = ['<section id="answer"><h2>The answer</h2><div class="answer">',
           f'<p class="verdict inconclusive">⚠ {esc(missing["text"])}. Not done: {esc(left)}.</p>' if missing else "",
           f"<p>Primary metric: <b>test {esc(primary)}</b> "
           f"({'higher' if metric_info(primary, study.task).higher_is_better else 'lower'} is better), "
           f"mean over runs with its {level} interval (the design-aware model of the verdicts), and the rank.</p>",
           table(["contender", f"test {primary}", f"{level} CI", "std over runs", "runs", "rank"], rows,
                 tips={f"test {primary}": _metric_tip(primary, study.task)})]
    label = primary.upper() if primary in ("auroc", "qwk", "mcc", "f1") else primary.replace("_", " ")
    for p in comparison.get("pairs", []):
        text, cls = verdict_sentence(p, scale, unit, label)
        out.append(f'<p class="verdict {cls}" title="{esc(VERDICT_TIP)}">{esc(text)}</p>')
        if p.get("scope") == "trained weights" or p.get("seed_sd"):
            out.append(f'<p class="note">{esc(p.get("scope_text", ""))}</p>')
        from bakeoff.report.words import to_decide_text

        advice = to_decide_text(p)
        if advice:
            out.append(f'<p class="note"><b>What would decide it</b>: {esc(advice)}</p>')
    if comparison.get("sequential"):
        out.append(f'<p class="note">{esc(comparison["sequential"]["text"])}</p>')
    if comparison.get("note"):
        out.append(f'<p class="note">{esc(comparison["note"])}</p>')
    if comparison.get("pairs"):
        out.append(f'<p class="note">Verdicts: paired tests on the shared test units and seeds, Holm-adjusted '
                   f'over {len(comparison["pairs"])} pair(s); margin {ev.min_effect:g}; α = {ev.alpha:g}.</p>')
    out.append("</div></section>")
    return "".join(out)


VERDICT_TIP = ("The difference is the first contender's mean test score minus the second's; the CI is where the "
               "true difference lies with this confidence (paired over the shared test units and seeds); p tests a "
               "zero difference, Holm-adjusted over the pairs; 'better' needs the whole CI beyond the margin, "
               "'equivalent' the whole CI within it, anything else is 'inconclusive'.")


def _metric_tip(name: str, task: str | None = None) -> str:
    try:
        m = metric_info(name, task)
    except Exception:  # noqa: BLE001 - a column that is not a registered metric (a cost, a user's column)
        return GLOSSARY.get(name, "")
    direction = "higher is better" if m.higher_is_better else "lower is better"
    return f"{m.description or name} ({direction})"


def stability_section(stability: dict | None, sig_fig: Path | None, blob_fig: Path | None, ranking: dict | None,
                      cd_fig: Path | None, sig_family: str = "") -> str:
    out = ['<section id="stability"><h2>How stable is the ranking</h2>']
    if not stability:
        out.append("<p>One contender: no ranking.</p></section>")
        return "".join(out)
    tau = stability["kendall_tau"]
    rows = [[esc(c), _fmt(stability["value"][c]), _rank(stability["rank"][c]), _fmt(stability["mean_rank"][c], 2),
             f"[{stability['rank_interval'][c][0]:g}, {stability['rank_interval'][c][1]:g}]",
             f"{stability['p_first'][c]:.1%}"] for c in stability["contenders"]]
    out.append(table(["contender", stability["metric"], "rank", "mean bootstrap rank", "95% rank interval",
                      "ranked first"], rows, tips={stability["metric"]: _metric_tip(stability["metric"])}))
    if tau.get("median") is not None:
        out.append(f"<p>Kendall's τ between the full-data ranking and the resampled ones: median {tau['median']:.2f} "
                   f"(2.5% quantile {tau['q025']:.2f}) over {stability['n_boot']} resamples of the "
                   f"{esc(stability['resampled'])}: {esc(stability['method'])}.</p>"
                   f'<p class="note">How to read it: τ = 1 means a resample ranks the contenders exactly as the '
                   f"full data do, −1 the reverse order, 0 no relation; the 2.5 % quantile is the τ that 97.5 % of "
                   f"resamples exceed. With two contenders τ can only be +1 or −1, so a quantile of −1 says that at "
                   f"least 2.5 % of resamples swap them.</p>")
    out.append(figure(blob_fig, "Rank distribution per contender (blob plot, after challengeR)."))
    out.append(figure(sig_fig, "Significance map: which paired differences the tests support (Holm"
                               + (f": {sig_family}" if sig_family else "") + ")."))
    if ranking:
        ranks = ", ".join(f"{c} {v:.2f}" for c, v in sorted(ranking["average_ranks"].items(), key=lambda kv: kv[1]))
        line = f"Average ranks over {ranking['n_blocks']} block(s): {ranks}."
        if ranking.get("p_value") is not None:
            line += f" Friedman p = {ranking['p_value']:.3g}; Nemenyi CD {ranking['nemenyi_critical_difference']:.2f}."
        else:
            line += " " + (ranking.get("note") or "")
        out.append(f"<p class='note'>{esc(line)}</p>")
    out.append(figure(cd_fig, "Critical-difference diagram (Friedman / Nemenyi over independent test sets)."))
    out.append("</section>")
    return "".join(out)


def list_section(sid: str, title: str, lines: list[str], empty: str) -> str:
    items = "".join(f"<li>{esc(x.strip())}</li>" for x in lines) if lines else f"<li>{esc(empty)}</li>"
    return f'<section id="{sid}"><h2>{esc(title)}</h2><ul>{items}</ul></section>'


def metrics_section(summary: pd.DataFrame, order: list[str], colours: dict, overall: list[str],
                    task: str | None = None) -> str:
    out = ['<section id="metrics"><h2>All metrics</h2><p class="note">Test metrics, mean ± std over runs; '
           'click a column to sort.</p>']
    if not len(summary):
        return out[0] + "<p>No completed runs.</p></section>"
    wide = summary.pivot(index="contender", columns="metric", values="mean")
    std = summary.pivot(index="contender", columns="metric", values="std")
    cols = [f"test_{m}" for m in overall if f"test_{m}" in wide.columns]
    per_class = [c for c in wide.columns if c.startswith("test_") and c not in cols and "@" not in c
                 and not c[5:].startswith("n_undefined")]

    def rows_for(columns: list[str]) -> list[list[Any]]:
        rows = []
        for c in order:
            if c not in wide.index:
                continue
            row: list[Any] = [f"{_swatch(colours[c])}{esc(c)}"]
            for m in columns:
                v, sd = wide.loc[c, m], std.loc[c, m]
                shown = _fmt(v) + ("" if pd.isna(sd) or sd == 0 else f" ± {_fmt(sd)}")
                row.append((shown, "" if pd.isna(v) else v))
            rows.append(row)
        return rows

    tips = {c[5:]: _metric_tip(c[5:], task) for c in cols + per_class}
    out.append(table(["contender"] + [c[5:] for c in cols], rows_for(cols), tips=tips))
    if per_class:
        out.append("<h3>Per class</h3>")
        out.append(table(["contender"] + [c[5:] for c in per_class], rows_for(per_class), tips=tips))
    out.append("</section>")
    return "".join(out)


def cost_section(costs: pd.DataFrame, order: list[str], colours: dict, scatter: Path | None) -> str:
    out = ['<section id="cost"><h2>Cost</h2><p class="note">Mean over runs. FLOPs: one forward pass of one '
           'sample (torch.utils.flop_counter; a multiply-add counts 2). Device-hours: training time x devices.</p>']
    spec = [("n_parameters", "parameters", 0), ("flops_per_sample", "FLOPs / sample", -1),
            ("train_time_s", "training time (s)", 1), ("device_hours", "device-hours", 1),
            ("peak_memory_mb", "peak memory (MB)", 1), ("latency_ms", "latency (ms / sample)", 1),
            ("throughput_per_s", "throughput (samples / s)", 1)]
    spec = [s for s in spec if s[0] in costs]
    rows = []
    for c in order:
        if c not in costs.index:
            continue
        row: list[Any] = [f"{_swatch(colours[c])}{esc(c)}"]
        for col, _, factor in spec:
            v = costs.loc[c, col]
            if pd.isna(v):
                row.append(("–", ""))
            elif factor == 0:
                row.append((f"{int(v):,}", v))
            elif factor == -1:  # three significant digits with an SI prefix: 355 k, 1.23 G
                row.append((si(float(v)), v))
            else:
                row.append((_fmt(v * factor, 3 if col != "device_hours" else 5), v))
        rows.append(row)
    out.append(table(["contender"] + [s[1] for s in spec], rows))
    out.append(figure(scatter, "Quality vs cost: primary metric against latency, parameters and training "
                               "device time (each in a unit that fits its size); dashed: the Pareto front."))
    out.append("</section>")
    return "".join(out)


def methods_section(paragraph: str, bibtex: str) -> str:
    return (f'<section id="methods"><h2>Methods</h2><p class="note">Generated from the resolved study; ready to '
            f'paste.</p><pre id="methods-text">{esc(paragraph)}</pre><h3>BibTeX</h3><pre>{esc(bibtex)}</pre>'
            f"</section>")


def page(title: str, parts: list[str]) -> str:
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{esc(title)}</title>"
            f"<style>{CSS}</style></head><body><main>{''.join(parts)}</main><script>{SORT_JS}</script>"
            "</body></html>")


def fairness_section(lines: list[str], fairness: dict | None) -> str:
    """The audit's lines, then every setting that was identical for all contenders (folded)."""
    out = [list_section("fairness", "Fairness audit", lines, "no completed runs to audit").removesuffix("</section>")]
    identical = (fairness or {}).get("identical") or {}
    if identical:
        rows = [[esc(k), esc(v)] for k, v in sorted(identical.items())]
        out.append(f"<details><summary>{len(identical)} settings identical for every contender and run</summary>"
                   + table(["setting", "value"], rows, sortable=False) + "</details>")
    out.append("</section>")
    return "".join(out)
