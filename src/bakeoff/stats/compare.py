"""Every pairwise comparison of a study, its verdicts and the fairness audit: ``comparison.json``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from bakeoff.config import EvaluationConfig, StudyConfig
from bakeoff.stats.across import almost_stochastic_order, bca_interval, correlated_ttest, holm, wilcoxon
from bakeoff.stats.audit import fairness_audit
from bakeoff.stats.design import (
    Estimate,
    claim_tests,
    estimate,
    jackknife_values,
    required_size,
    satterthwaite,
)
from bakeoff.stats.paired import PairedRuns, paired_runs, run_pair_tests
from bakeoff.stats.results import Comparison, PairResult
from bakeoff.stats.verdict import verdict
from bakeoff.tasks import task_class, task_for

_NOT_PER_UNIT = ("class_names", "spacing")  # saved with a dense part, not one entry per image


def test_parts(evaluations: dict, df: pd.DataFrame, contender: str) -> dict[tuple[int, int], dict[str, Any]]:
    """A contender's test part per (seed, fold), its units sorted by id, with the per-image tables its
    evaluation kept (dense tasks) under ``tables``."""
    rows = df[(df["contender"] == contender) & (df["status"] == "done")]
    out = {}
    for _, r in rows.iterrows():
        e = evaluations[(contender, r["run_id"])]
        t = e["preds"]["test"]
        order = np.argsort(t["ids"], kind="stable")
        n = len(order)
        part: dict[str, Any] = {}
        for k, v in t.items():
            if k in _NOT_PER_UNIT or v is None or len(v) != n:
                part[k] = v
            else:
                part[k] = v[order] if isinstance(v, np.ndarray) else [v[i] for i in order]
        tables = e.get("tables", {}).get("test")
        if tables:
            part["tables"] = {m: (num[order], den[order]) for m, (num, den) in tables.items()}
        out[(int(r["seed"]), int(r["fold"]))] = part
    return out


def pair_runs(task: Any, evaluations: dict, df: pd.DataFrame, a: str, b: str, ev: EvaluationConfig) -> PairedRuns | None:
    """Two contenders' test parts matched by (seed, fold) and unit id, as tables of ``ev.primary``; None
    if they share no run."""
    pa, pb = test_parts(evaluations, df, a), test_parts(evaluations, df, b)
    keys = sorted(set(pa) & set(pb))
    if not keys:
        return None
    for k in keys:
        if not np.array_equal(pa[k]["ids"], pb[k]["ids"]):
            raise ValueError(f"{a} and {b} were tested on different samples in seed {k[0]}, fold {k[1]}")
    return paired_runs(task, ev.primary, {k: pa[k] for k in keys}, {k: pb[k] for k in keys}, ev.threshold)


ValueFn = Callable[[tuple[int, int], str, np.ndarray], np.ndarray]


def design_estimates(runs: Any, value: ValueFn, units: Callable[[int], int],
                     loo: Callable[[tuple[int, int], str], np.ndarray] | None = None,
                     own_scale: bool = True, independent_runs: bool = False) -> dict[str, Estimate]:
    """The design-aware estimates of A - B, of A and of B: ``value(key, "a"|"b", W)`` is the metric of
    one contender's run under sample weights W (B, n); the jackknife uses leave-one-unit-out weights, or
    ``loo(key, which)`` where a metric has a closed form for them. With ``own_scale`` also each
    contender's score on the logit scale of the metric's range (for its own interval only). With
    ``independent_runs`` (per-contender seed streams: a seed's runs of A and B share no random stream) the
    seed spread of A - B is pooled over the two contenders (``design.run_spread``); otherwise it is the
    spread of the paired differences."""
    points: dict[str, dict] = {"a": {}, "b": {}, "diff": {}}
    loos: dict[str, dict] = {"a": {}, "b": {}, "diff": {}}
    for key in runs.keys:
        n = units(key[1])
        for which in ("a", "b"):
            points[which][key] = float(value(key, which, np.ones((1, n)))[0])
            loos[which][key] = (loo(key, which) if loo is not None else
                                jackknife_values(lambda W, w=which, k=key: value(k, w, W), n))
        points["diff"][key] = points["a"][key] - points["b"][key]
        loos["diff"][key] = loos["a"][key] - loos["b"][key]
    ids = getattr(runs, "ids", None)
    out = {w: estimate(points[w], loos[w], runs.folds, ids,
                       sides=((points["a"], loos["a"]), (points["b"], loos["b"]))
                       if w == "diff" and independent_runs else None)
           for w in points}
    bounds = getattr(getattr(runs, "metric", None), "bounds", None)
    if own_scale and bounds is not None and np.isfinite(bounds[0]) and np.isfinite(bounds[1]):
        for w in ("a", "b"):  # each contender's own score, also on the logit scale of its range
            out[f"{w}_logit"] = estimate(
                {k: float(to_logit(np.array([v]), bounds, len(loos[w][k]))[0]) for k, v in points[w].items()},
                {k: to_logit(v, bounds, len(v)) for k, v in loos[w].items()}, runs.folds, ids)
            if any(v in bounds for v in points[w].values()):
                out[f"{w}_logit"].notes.append(AT_BOUND)
    return out


AT_BOUND = "a run's value lies at the end of the metric's range"


def to_logit(x: np.ndarray, bounds: tuple[float, float], n: int) -> np.ndarray:
    """A value of a metric with range ``bounds`` on the logit scale of that range, kept half a unit in
    ``n`` test units away from its ends (a value at the very end has no finite logit)."""
    lo, hi = bounds
    eps = 0.5 / (n + 1)
    u = np.clip((np.asarray(x, float) - lo) / (hi - lo), eps, 1 - eps)
    return np.log(u / (1 - u))


def from_logit(z: float, bounds: tuple[float, float]) -> float:
    lo, hi = bounds
    return float(lo + (hi - lo) / (1 + np.exp(-z)))


def pair_result(a: str, b: str, ev: EvaluationConfig, runs: Any, est: dict[str, Estimate], n_test: int,
                per_run: list[dict], seed: int, unit: str = "sample", extras: bool = True) -> PairResult:
    """One pair's entry in comparison.json, whatever the task: the mean paired difference, its interval
    and tests under the design's model (seeds x test units, shared or disjoint test sets), the
    (unadjusted) verdict, each contender's own interval and, with ``extras``, the tests per run and
    across independent test sets (reported, not part of the verdict; simulations leave them out)."""
    m = ev.primary
    hib = runs.metric.higher_is_better
    d = est["diff"]
    scope = verdict_scope(d, ev.seed_sd)
    if scope["prior"]:  # one seed with a stated seed-to-seed sd: that variance added, as if known
        d = replace(d, var=d.var + ev.seed_sd ** 2, notes=d.notes + [scope["text"]],
                    df=satterthwaite([*[p for g in d.groups for p in g.parts], (ev.seed_sd ** 2, float("inf"))]))
    tests = claim_tests(d, ev.min_effect, ev.alpha)
    result: dict[str, Any] = {
        "a": a, "b": b, "metric": m, "higher_is_better": hib, "difference": d.mean,
        **{k: tests[k] for k in ("ci_low", "ci_high")}, "ci_level": 1 - ev.alpha, "ci_method": d.method,
        "p_value": tests["p_value"], "p_margin": tests["p_margin"], "p_equivalence": tests["p_equivalence"],
        "ci_equivalence": tests.get("ci_equivalence"), "df": tests["df"], "se": tests["se"],
        "test": (f"two-sided t test of the mean paired difference ({tests['df']:.1f} df); p_margin tests it "
                 f"against ±min_effect, which a verdict of 'better' must clear"),
        "equivalence_test": (f"TOST at alpha {ev.alpha:g}: equivalent when the {1 - 2 * ev.alpha:.0%} interval "
                             f"{_fmt_interval(tests.get('ci_equivalence'))} lies inside ±{ev.min_effect:g}"),
        "min_effect": ev.min_effect, "n_runs": len(runs.keys), "n_test_samples": n_test, "unit": unit,
        "design": {"test_sets": d.design, "components": d.components(), "variance_shares": variance_shares(d),
                   "notes": d.notes},
        "contenders": {c: own_interval(est[w], ev.alpha, runs.metric.bounds, est.get(f"{w}_logit"))
                       for c, w in ((a, "a"), (b, "b"))},
    }
    span = _span(runs.metric.bounds)
    if span is not None:  # a difference lies within +-(hi - lo); cutting the interval there keeps its coverage
        result["ci_low"], result["ci_high"] = max(result["ci_low"], -span), min(result["ci_high"], span)
        if result.get("ci_equivalence"):
            result["ci_equivalence"] = [max(result["ci_equivalence"][0], -span),
                                        min(result["ci_equivalence"][1], span)]
    if "p_floor" in tests:
        result["p_floor"], result["degenerate"] = tests["p_floor"], tests["note"]
    result["scope"], result["scope_text"] = scope["scope"], scope["text"]
    if scope["prior"]:
        result["seed_sd"] = ev.seed_sd
    result["verdict"] = scoped(verdict(a, b, d.mean, ev.min_effect, hib, tests["p_margin"], tests["p_equivalence"],
                                       ev.alpha), result["scope"])
    result["per_run"] = per_run
    if extras:
        result["across_runs"] = across_runs(runs, est, ev, hib, seed)
    return result


WEIGHTS = "trained weights"
RECIPE = "training recipe"


def verdict_scope(d: Estimate, seed_sd: float | None) -> dict[str, Any]:
    """What a verdict is about: with one training run per contender on one test set, the two trained
    models (seed-to-seed variation unmeasured), unless a seed-to-seed sd is stated; otherwise the
    training recipe (the architecture under this protocol), with its seed variation in the interval."""
    one_run = bool(d.groups) and d.fold_spread is None and all(g.runs == 1 for g in d.groups)
    if not one_run:
        return {"scope": RECIPE, "prior": False,
                "text": "about the training recipe: seed-to-seed (and fold) variation is in the interval"}
    if seed_sd:
        return {"scope": RECIPE, "prior": True,
                "text": f"one seed: about the training recipe only under the stated seed-to-seed sd of the "
                        f"difference, evaluation.seed_sd = {seed_sd:g} (added to the variance, as if known)"}
    return {"scope": WEIGHTS, "prior": False,
            "text": "one seed: about these two trained models, not the architectures; another seed of the same "
                    "recipe could rank them otherwise (train 3 seeds, or state evaluation.seed_sd)"}


def scoped(text: str, scope: str | None) -> str:
    """A directional or equivalence verdict on one seed says that it is about the trained weights."""
    return f"{text} (these trained weights, 1 seed)" if scope == WEIGHTS and text != "inconclusive" else text


def _fmt_interval(ci: list[float] | None) -> str:
    return "" if not ci else f"[{ci[0]:+.4g}, {ci[1]:+.4g}]"


def _span(bounds: tuple[float, float] | None) -> float | None:
    if bounds is None or not (np.isfinite(bounds[0]) and np.isfinite(bounds[1])):
        return None
    return float(bounds[1] - bounds[0])


def own_interval(est: Estimate, alpha: float, bounds: tuple[float, float] | None = None,
                 logit: Estimate | None = None) -> dict[str, Any]:
    """A contender's own mean score over its runs with an interval that knows the runs share test sets.
    A metric with a range gets the interval of the same design model on the logit scale of that range,
    transformed back: asymmetric near the ends and never outside the range (on 40 samples with 6
    positives a symmetric t interval covered the true AUROC 0.82-0.88 of the time and passed 1 in most
    studies; the angular scale asin(sqrt(u)) covered 0.91-0.92 with one run, the logit 0.94-0.98). A
    metric bounded on one side only has its interval cut at that bound."""
    lo, hi = est.interval(1 - alpha)
    method = "t interval of the design model"
    if logit is not None and np.isfinite(logit.mean) and bounds is not None:
        if (logit.var <= 1e-12 or AT_BOUND in logit.notes) and logit.groups:
            # a run at the end of the range (an AUROC of 1) says nothing through its leave-one-out values
            # about how far off it is: the variance of a proportion of the test units at that value
            # (Wilson's idea) is the floor of the variance on the logit scale
            G = len(logit.groups)
            u = 1 / (1 + np.exp(-logit.mean))
            floor = sum(1 / (g.units * u * (1 - u)) for g in logit.groups) / G ** 2
            if floor > logit.var:
                logit = replace(logit, var=floor, df=logit.df if logit.var > 1e-12 else
                                float(max(1, sum(g.units for g in logit.groups) - 1)))
        zlo, zhi = logit.interval(1 - alpha)
        lo, hi = from_logit(zlo, bounds), from_logit(zhi, bounds)
        lo, hi = min(lo, est.mean), max(hi, est.mean)  # the reported mean stays inside its interval
        method = "t interval of the design model on the logit scale of the metric's range, transformed back"
    elif bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return {"mean": est.mean, "ci_low": lo, "ci_high": hi, "ci_level": 1 - alpha, "df": est.df,
            "interval_method": method}


def variance_shares(est: Estimate) -> dict[str, Any] | None:
    """How much of the variance of the mean difference comes from training runs (seeds, folds), from
    the test units common to all runs, and from their interaction (Bouthillier et al. 2021)."""
    if est.fold_spread is not None or not est.groups or any(g.tau2 is None for g in est.groups):
        return None
    G = len(est.groups)
    parts = {"training_runs": sum(g.tau2 / g.runs for g in est.groups) / G ** 2,
             "test_units": sum(g.shared for g in est.groups) / G ** 2,
             "interaction": sum(g.churn / g.runs for g in est.groups) / G ** 2}
    total = sum(parts.values())
    if total <= 0:
        return None
    return {k: float(v / total) for k, v in parts.items()}


def compare_pair(runs: PairedRuns, a: str, b: str, ev: EvaluationConfig, seed: int = 0, extras: bool = True,
                 per_run_tests: Callable[[tuple[int, int]], dict[str, Any]] | None = None,
                 unit: str = "sample", own_scale: bool = True, independent_runs: bool = False) -> PairResult:
    """The verdict on the paired metric for A against B, whatever the task: the design-aware estimates
    from the metric under unit weights, and with ``extras`` the task's per-run tests (reported, not part
    of the verdict); without ``own_scale`` the contenders' own intervals are plain t intervals (for
    simulations that judge only the verdict); ``independent_runs``: see ``design_estimates``."""
    m = runs.metric
    loo = (lambda key, which: m.leave_one_out((runs.a if which == "a" else runs.b)[key])) if m.leave_one_out else None
    est = design_estimates(runs, runs.values, lambda f: runs.units[f], loo, own_scale=own_scale,
                           independent_runs=independent_runs)
    per_run = [{"seed": s, "fold": f, **per_run_tests((s, f))}
               for (s, f) in (runs.keys if extras and per_run_tests else [])]
    return pair_result(a, b, ev, runs, est, est["diff"].test_units, per_run, seed, unit=unit, extras=extras)


def compare_runs(task_name: str, evaluations: dict, df: pd.DataFrame, a: str, b: str, ev: EvaluationConfig,
                 seed: int, independent_runs: bool = False) -> dict | None:
    """The verdict record of contender ``a`` against ``b`` on the primary metric (None: no shared runs):
    the same pairing, estimates and tests for every task, through the primary metric's per-unit table,
    with the task's per-run tests beside it."""
    some = next(iter(test_parts(evaluations, df, a).values()), None)
    if some is None:
        return None
    task = task_for(task_name, {"test": some}, ev)
    runs = pair_runs(task, evaluations, df, a, b, ev)
    if runs is None:
        return None
    return compare_pair(runs, a, b, ev, seed=seed, unit=task.unit, independent_runs=independent_runs,
                        per_run_tests=lambda key: run_pair_tests(task.per_run_tests, runs, key, ev))


def across_runs(runs: Any, est: dict[str, Estimate], ev: EvaluationConfig, hib: bool, seed: int) -> dict:
    """Tests that treat replicates as independent, on the per-test-set means (independent only when the
    test sets are disjoint): BCa interval, Bayesian correlated t-test, Wilcoxon, optionally ASO. With one
    shared test set they are not run: its runs are not independent replicates."""
    ga = np.array([g.mean for g in est["a"].groups])
    gb = np.array([g.mean for g in est["b"].groups])
    out: dict[str, Any] = {"differences": [float(x) for x in ga - gb], "replicates": "test sets"}
    if len(ga) < 2:
        note = ("not run: every run is scored on one shared test set, so runs are not independent "
                "replicates (the verdict's model accounts for that)")
        return {**out, "bca": {"ci_low": None, "ci_high": None, "note": note},
                "correlated_ttest": {"note": note}, "wilcoxon": {"p_value": None, "note": note}, "note": note}
    sign = 1 if hib else -1  # every probability below is about the better-is-higher direction
    out.update({"bca": bca_interval(ga - gb, 1 - ev.alpha, seed),
                "correlated_ttest": correlated_ttest(sign * ga, sign * gb, ev.min_effect, 1),
                "wilcoxon": wilcoxon(ga - gb)})
    if ev.aso:
        out["aso"] = almost_stochastic_order(sign * ga, sign * gb, ev.alpha, seed)
    return out


def adjust_pairs(pairs: list[dict[str, Any]], metric: str, alpha: float = 0.05, advise: bool = True) -> dict[str, str]:
    """Holm-adjust the pairs' p-values (the test against the margin, and the equivalence test) in place
    and decide each verdict on the adjusted values, so that comparing many pairs does not inflate the
    chance of a false "better" or "equivalent"; say when a pair cannot reach significance at all and,
    with ``advise``, what would decide an inconclusive pair (or judge a one-seed one's recipe)."""
    m = len(pairs)
    for p, adj, adj_eq in zip(pairs, holm([p["p_margin"] for p in pairs]), holm([p["p_equivalence"] for p in pairs])):
        p["p_value_holm"], p["p_equivalence_holm"] = adj, adj_eq
        p["verdict"] = scoped(verdict(p["a"], p["b"], p["difference"], p["min_effect"], p["higher_is_better"], adj,
                                      adj_eq, alpha), p.get("scope"))
        p.pop("to_resolve", None)
        p.pop("unreachable", None)
        if "p_floor" in p and p["p_floor"] * m >= alpha:
            p["unreachable"] = (f"cannot reach significance: the smallest p-value this design allows is "
                                f"{p['p_floor']:.3g}" + (f", times {m} pairs under Holm" if m > 1 else ""))
        if advise and (p["verdict"] == "inconclusive" or p.get("scope") == WEIGHTS):
            p["to_resolve"] = required_size(p["design"]["components"], p["difference"], p["min_effect"],
                                            alpha / max(m, 1), seed_sd=p.get("seed_sd"))
    return {"method": "Holm (statsmodels multipletests method='holm')",
            "family": f"the {m} pair(s) compared on the primary metric {metric}; verdicts use the adjusted "
                      f"p-values (p_value_holm for 'better', p_equivalence_holm for 'equivalent'); per-run "
                      f"McNemar/DeLong/Wilcoxon p-values are not adjusted"}


def compare_study(study: StudyConfig, df: pd.DataFrame, evaluations: dict, run_infos: list[dict],
                  tuned: dict[str, dict[str, Any]] | None = None) -> Comparison:
    """Verdicts for the baseline against each contender (or all pairs), Holm-adjusted, and the audit."""
    order = [c for c in study.contenders if c in set(df.get("contender", []))]
    out: dict[str, Any] = {
        "primary": study.evaluation.primary, "baseline": study.baseline, "alpha": study.evaluation.alpha,
        "min_effect": study.evaluation.min_effect, "threshold": study.evaluation.threshold, "pairs": [],
    }
    kind = task_class(study.task)
    note = kind.verdict_note(study.evaluation.primary)
    if note:
        out["note"] = note
    else:
        base = study.baseline
        if study.evaluation.pairs == "all":
            pairs = list(combinations(order, 2))
        else:
            pairs = [(c, base) for c in order if c != base]
        for i, (a, b) in enumerate(pairs):
            pair = compare_runs(study.task, evaluations, df, a, b, study.evaluation, seed=i,
                                independent_runs=study.protocol.seed_streams == "per_contender")
            if pair is not None:
                out["pairs"].append(pair)
        out["multiple_testing"] = adjust_pairs(out["pairs"], study.evaluation.primary, study.evaluation.alpha)
        out["contenders"] = {}
        for p in out["pairs"]:
            for c, interval in p["contenders"].items():
                out["contenders"].setdefault(c, {**interval, "method": p["ci_method"]})
    overrides = {c: cfg.protocol for c, cfg in study.contenders.items()}
    tuning = None
    if study.tuning.mode != "none":
        tuning = {"mode": study.tuning.mode, "trials_per_contender": study.tuning.trials,
                  "space": {k: v.model_dump(exclude_none=True) for k, v in study.tuning.space.items()},
                  "judged_on": "validation split of fold 0, first seed", "best": tuned or {}}
    out["fairness"] = fairness_audit(run_infos, overrides, tuning)
    return out
