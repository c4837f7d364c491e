"""DIR/report.html of a suite: one self-contained page, the answer across datasets first. Built from
``suite.json`` (``bakeoff.suite.summarize``) and the figures beside it; each dataset's own report is linked,
not repeated. Sections, in order: header, answer, forest plots, ranks (CD diagram), aggregate scores
(IQM, probability of improvement, performance profiles), ranking robustness, datasets, cost, methods."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bakeoff.report.html import _fmt, esc, figure, page, table, verdict_mark
from bakeoff.stats.meta import METHOD
from bakeoff.utils import atomic_write_text

SUITE_SECTIONS = ("header", "answer", "forest", "ranks", "aggregates", "robustness", "datasets", "cost", "methods")


def _signed(v: Any) -> str:
    return "–" if v is None else f"{v:+.4f}"


def _interval(lo: Any, hi: Any) -> str:
    return "–" if lo is None or hi is None else f"[{lo:+.4f}, {hi:+.4f}]"


def _verdict_class(pair: dict[str, Any]) -> str:
    return {"✓": "better", "✗": "worse", "≈": "equivalent"}.get(verdict_mark(pair), "inconclusive")


def answer(result: dict[str, Any]) -> str:
    k = len(result["datasets"])
    parts = [f'<section id="answer"><h2>Answer across {k} datasets</h2><div class="answer">']
    for p in result["pairs"]:
        ci = _interval(p.get("ci_low"), p.get("ci_high"))
        pi = p.get("prediction_interval")
        new = (f"; on a new dataset of this kind, 95 % prediction interval {_interval(*pi)}" if pi else
               "; too few datasets to predict a new dataset's effect")
        text = (f"{verdict_mark(p)} {p['a']} − {p['b']} on {result['primary']}: mean {_signed(p['difference'])}, "
                f"95 % CI {ci}{new}: {p['verdict']}")
        parts.append(f'<p class="verdict {_verdict_class(p)}">{esc(text)}</p>')
        for note in p.get("notes", []):
            parts.append(f'<p class="note">{esc(note)}</p>')
    rows = []
    for p in result["pairs"]:
        w = p["wins"]
        tau = "–" if p.get("tau2") is None else f"{p['tau2']:.3g} / {p['i2']:.0%}"
        rows.append([esc(f"{p['a']} − {p['b']}"), _signed(p["difference"]), _interval(p.get("ci_low"), p.get("ci_high")),
                     _interval(*p["prediction_interval"]) if p.get("prediction_interval") else "too few datasets",
                     tau, f"{w['a']} / {w['b']} / {w['equivalent']} / {w['inconclusive']}",
                     _fmt(p.get("p_value_holm")), esc(p["verdict"])])
    parts.append(table(["pair (A − B)", "mean difference", "95% CI", "prediction (new dataset)", "τ² / I²",
                        "per dataset: A / B better / ≈ / ?", "p (Holm)", "verdict"], rows,
                       tips={"95% CI": "Where the mean difference over datasets like these lies with 95 % confidence "
                                       "(a t interval on k − 1 degrees of freedom from the datasets' own spread: it "
                                       "widens when they disagree)."}))
    parts.append(f'<p class="note">{esc(result["multiple_testing"])}. "Per dataset" counts each dataset\'s own '
                 f"verdict (its report). Scale: {esc(result.get('normalisation', ''))}.</p>")
    if result.get("pairs_not_in_every_dataset"):
        parts.append(f'<p class="note">Pairs missing in some datasets: {esc(result["pairs_not_in_every_dataset"])}</p>')
    parts.append("</div></section>")
    return "".join(parts)


def forest(plots: dict[str, str]) -> str:
    figs = [figure(Path(path), f"{name}: each dataset's difference and its own 95 % interval (its verdict at the "
                               f"right), the pooled mean with its interval (black), and the prediction interval "
                               f"for a new dataset (dashed)")
            for name, path in plots.items() if name.startswith("forest")]
    return f'<section id="forest"><h2>Forest plots</h2>{"".join(figs)}</section>'


def ranks(result: dict[str, Any], plots: dict[str, str]) -> str:
    s = result.get("summaries", {})
    r = s.get("ranks")
    if not r:
        return '<section id="ranks"><h2>Ranks</h2><p>no dataset has scores for every contender</p></section>'
    names = list(r["average_ranks"])
    rows = [[esc(c), _fmt(r["average_ranks"][c], 2)] + [_fmt(r["ranks"][d][c], 1) for d in r["ranks"]] for c in names]
    out = [f'<section id="ranks"><h2>Mean ranks</h2><p class="note">Ranked within each dataset on the mean of its '
           f"runs (1 = best), then averaged. {esc(r['test'])}.</p>",
           table(["contender", "mean rank"] + list(r["ranks"]), rows)]
    if r.get("note"):
        out.append(f'<p class="note">{esc(r["note"])}</p>')
    pairs = [[esc(a), esc(b), _fmt(r["p_holm"][a][b])] for i, a in enumerate(names) for b in names[i + 1:]]
    out.append(table(["A", "B", "Wilcoxon p (Holm)"], pairs))
    out.append(figure(Path(plots.get("critical difference", "")),
                      "Critical-difference diagram: mean ranks; a bar joins contenders that Wilcoxon + Holm over the "
                      "datasets cannot tell apart"))
    return "".join(out) + "</section>"


def aggregates(result: dict[str, Any], plots: dict[str, str]) -> str:
    s = result.get("summaries", {})
    e = s.get("estimates")
    if not e:
        return '<section id="aggregates"><h2>Aggregate scores</h2><p>none</p></section>'
    rows = [[esc(c), _fmt(v["value"]), _interval(*v["ci"]).replace("+", ""), _fmt(e["mean"][c]["value"]),
             _interval(*e["mean"][c]["ci"]).replace("+", "")] for c, v in e["iqm"].items()]
    out = [f'<section id="aggregates"><h2>Aggregate scores over every run</h2><p class="note">{esc(s["normalisation"])}'
           f"; scores {esc(e['oriented'])}. IQM: the mean of the middle 50 % of all runs of all datasets; "
           f"{e['level']:.0%} intervals from a stratified bootstrap ({e['reps']} draws, runs resampled within each "
           f"dataset), as in rliable (Agarwal et al. 2021).</p>",
           table(["contender", "IQM", "IQM interval", "mean", "mean interval"], rows)]
    poi = [[esc(v["a"]), esc(v["b"]), _fmt(v["value"], 3), _interval(*v["ci"]).replace("+", "")]
           for v in e["probability_of_improvement"].values()]
    if poi:
        out.append("<h3>Probability of improvement</h3><p class=\"note\">P(A &gt; B): the chance that a run of A "
                   "scores above a run of B on the same dataset (ties count a half), averaged over datasets.</p>")
        out.append(table(["A", "B", "P(A > B)", "interval"], poi))
    out.append(figure(Path(plots.get("performance profiles", "")),
                      "Performance profiles: the fraction of runs scoring above each threshold, averaged over "
                      "datasets; a curve above another is better everywhere"))
    return "".join(out) + "</section>"


def robustness(result: dict[str, Any]) -> str:
    r = result.get("summaries", {}).get("robustness")
    if not r:
        return '<section id="robustness"><h2>Ranking robustness</h2><p>none</p></section>'
    methods = list(r["rankings"])
    contenders = list(next(iter(r["rankings"].values())))
    rows = [[esc(m)] + [_fmt(r["rankings"][m][c], 0) for c in contenders] for m in methods]
    out = ['<section id="robustness"><h2>Ranking robustness</h2><p class="note">The ranking (1 = best) under '
           f"different ways of aggregating over datasets ({esc(r['references'])}).</p>",
           table(["aggregation"] + contenders, rows)]
    if r["warning"]:
        out.append(f'<p class="verdict worse">⚠ {esc(r["warning"])}</p>')
    else:
        tied = any(len(w) > 1 for w in r["winners"].values())
        out.append(f'<p class="verdict better">First under every aggregation{" (tied under some)" if tied else ""}: '
                   f"{esc(', '.join(r['first_under_every_choice']))}.</p>")
    tau_rows = [[esc(m1)] + [_fmt(r["kendall_tau"][m1][m2], 2) for m2 in methods] for m1 in methods]
    out.append("<details><summary>Kendall's τ between the rankings</summary>"
               + table(["aggregation"] + methods, tau_rows, sortable=False) + "</details>")
    return "".join(out) + "</section>"


def datasets(result: dict[str, Any], config: Any) -> str:
    cards = []
    for name in result["datasets"]:
        entry = config.datasets[name]
        source = (entry.data or {}).get("source") if entry.data else f"study file {entry.study}"
        verdicts = "".join(f"<li>{esc(p['a'])} − {esc(p['b'])}: {_signed(p['per_dataset'][name]['difference'])} "
                           f"{_interval(p['per_dataset'][name]['ci_low'], p['per_dataset'][name]['ci_high'])}: "
                           f"{esc(p['per_dataset'][name]['verdict'])}</li>"
                           for p in result["pairs"] if name in p.get("per_dataset", {}))
        scores = result.get("summaries", {}).get("scores", {}).get(name, {})
        score_text = ", ".join(f"{esc(c)} {_fmt(v)}" for c, v in scores.items())
        metric = result.get("summaries", {}).get("metric", result["primary"])
        own = (result.get("overrides") or {}).get(name)
        override = f'<p class="note">⚠ settings of this dataset only (fairness): {esc(own)}</p>' if own else ""
        cards.append(f'<div class="answer" style="margin:8px 0"><h3><a href="{esc(result["reports"][name])}">{esc(name)}'
                     f'</a></h3><p class="note">data: {esc(source)}; mean {esc(metric)}: {score_text}</p>'
                     f"<ul>{verdicts}</ul>{override}</div>")
    overrides = result.get("overrides") or {}
    audit = ("Every dataset ran the same contenders under the same protocol and evaluation" +
             (f", except: {'; '.join(f'{d}: {v}' for d, v in overrides.items())}" if overrides else "") + ".")
    return f'<section id="datasets"><h2>Datasets</h2><p class="note">{esc(audit)} Each name opens that dataset\'s ' \
           f'own report (its runs, figures, fairness audit and methods).</p>{"".join(cards)}</section>'


def cost(result: dict[str, Any]) -> str:
    c = result.get("cost") or {}
    rows = [[esc(k), _fmt(v / 3600, 3)] for k, v in (c.get("train_time_s") or {}).items()]
    rows.append(["<b>suite</b>", _fmt((c.get("total_train_time_s") or 0) / 3600, 3)])
    return (f'<section id="cost"><h2>Cost</h2><p class="note">Training time summed over the {c.get("runs", 0)} '
            f"finished runs of every dataset (wall-clock hours as each run measured it).</p>"
            + table(["contender", "training hours"], rows) + "</section>")


def methods_text(result: dict[str, Any], config: Any) -> str:
    contenders = list(config.contenders)
    k = len(result["datasets"])
    n_pairs = len(result["pairs"])
    overrides = result.get("overrides") or {}
    s = (f"We compared {len(contenders)} contenders ({', '.join(contenders)}) on {k} datasets "
         f"({', '.join(result['datasets'])}) with one protocol shared by all"
         + (f" (dataset-specific settings: {'; '.join(f'{d}: {v}' for d, v in overrides.items())})" if overrides else "")
         + f", judged on {result['primary']}. Each dataset was a complete bake-off of its own (its report gives its "
         f"design, runs and methods). Across datasets we treated the datasets as replicates: {METHOD}; verdicts at "
         f"alpha = {result['alpha']} with Holm's adjustment over the {n_pairs} pair(s); normalisation "
         f"{result.get('normalisation', 'none')}. Mean ranks over datasets were "
         f"compared with the Wilcoxon signed-rank test and Holm's adjustment (Benavoli et al. 2016); the interquartile "
         f"mean, probability of improvement and performance profiles follow Agarwal et al. (2021) with a stratified "
         f"bootstrap; the ranking's dependence on the aggregation (mean, median, IQM, mean rank, significant wins) was "
         f"summarised with Kendall's tau (Maier-Hein et al. 2018).")
    if k < 3:
        s += " With fewer than three datasets nothing is claimed about datasets beyond these."
    return s


def write_suite_report(out: str | Path, result: dict[str, Any], config: Any, plots: dict[str, str] | None = None
                       ) -> Path:
    """``out/report.html`` from a suite's result (suite.json), its configuration and its figures (``plots``:
    name -> file; none under ``--no-plots``)."""
    out = Path(out)
    contenders = ", ".join(config.contenders)
    header = (f'<section id="header"><h1>{esc(result["name"])}</h1><div class="meta"><span>{len(result["datasets"])} '
              f"datasets</span><span>contenders: {esc(contenders)}</span><span>primary metric: "
              f"{esc(result['primary'])}</span><span>task: {esc(config.task)}</span></div></section>")
    methods = (f'<section id="methods"><h2>Methods</h2><pre id="methods-text">{esc(methods_text(result, config))}'
               f"</pre></section>")
    html = page(f"{result['name']}: suite report", [header, answer(result), forest(plots or {}), ranks(result, plots or {}),
                                                    aggregates(result, plots or {}), robustness(result),
                                                    datasets(result, config), cost(result), methods])
    path = out / "report.html"
    atomic_write_text(path, html)
    return path
