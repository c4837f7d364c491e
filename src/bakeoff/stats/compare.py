"""Every pairwise comparison of a study, its verdicts and the fairness audit: ``comparison.json``."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from bakeoff.config import DENSE_TASKS, EvaluationConfig, StudyConfig
from bakeoff.stats.across import almost_stochastic_order, bca_interval, correlated_ttest, holm, wilcoxon
from bakeoff.stats.audit import fairness_audit
from bakeoff.stats.multiclass import PAIRED_METRICS, MulticlassRuns
from bakeoff.stats.paired import PairedRuns, delong, mcnemar_exact, paired_bootstrap, paired_permutation
from bakeoff.stats.verdict import resolution_estimate, verdict
from bakeoff.stats.weighted import BINARY_METRICS
from bakeoff.tasks import metric_info


def _test_predictions(evaluations: dict, df: pd.DataFrame, contender: str) -> dict[tuple[int, int], dict]:
    rows = df[(df["contender"] == contender) & (df["status"] == "done")]
    out = {}
    for _, r in rows.iterrows():
        t = evaluations[(contender, r["run_id"])]["preds"]["test"]
        order = np.argsort(t["ids"])
        out[(int(r["seed"]), int(r["fold"]))] = {k: v[order] for k, v in t.items()}
    return out


def pair_runs(evaluations: dict, df: pd.DataFrame, a: str, b: str) -> PairedRuns | None:
    """Match two contenders' test predictions by (seed, fold) and sample id; None if nothing matches."""
    pa, pb = _test_predictions(evaluations, df, a), _test_predictions(evaluations, df, b)
    keys = sorted(set(pa) & set(pb))
    if not keys:
        return None
    y = {}
    for k in keys:
        if not np.array_equal(pa[k]["ids"], pb[k]["ids"]):
            raise ValueError(f"{a} and {b} were tested on different samples in seed {k[0]}, fold {k[1]}")
        y[k[1]] = pa[k]["y"]
    return PairedRuns(y=y, a={k: pa[k]["probs"] for k in keys}, b={k: pb[k]["probs"] for k in keys})


def pair_result(a: str, b: str, ev: EvaluationConfig, runs: Any, sa: np.ndarray, sb: np.ndarray,
                reps: np.ndarray, p_perm: float, n_test: int, per_run: list[dict], seed: int,
                unit: str = "sample", stratified: bool = True) -> dict[str, Any]:
    """One pair's entry in comparison.json, whatever the task: the mean paired difference over runs, its
    bootstrap interval, the permutation p-value, the verdict and the tests across runs."""
    m = ev.primary
    hib = metric_info(m).higher_is_better
    observed = float(np.nanmean(sa - sb))
    lo, hi = (float(x) for x in np.nanquantile(reps, [ev.alpha / 2, 1 - ev.alpha / 2]))
    n_seeds = len(runs.seeds)
    result: dict[str, Any] = {
        "a": a, "b": b, "metric": m, "higher_is_better": hib, "difference": observed,
        "ci_low": lo, "ci_high": hi, "ci_level": 1 - ev.alpha,
        "ci_method": f"paired bootstrap over test {unit}s ({'stratified by class, ' if stratified else ''}same draw "
                     f"for both contenders)" + (" and over seeds" if n_seeds > 1 else "")
                     + f", {ev.n_boot} resamples, percentile",
        "p_value": p_perm, "test": f"paired permutation test ({ev.n_permutations} random swaps of the two "
                                   f"contenders' predictions per {unit}), two-sided",
        "verdict": verdict(a, b, observed, lo, hi, ev.min_effect, hib, p_perm, ev.alpha),
        "min_effect": ev.min_effect, "n_runs": len(runs.keys), "n_test_samples": n_test,
    }
    if unit != "sample":
        result["unit"] = unit
    if result["verdict"] == "inconclusive":
        result["to_resolve"] = resolution_estimate(observed, lo, hi, ev.min_effect, n_test, n_seeds)
    result["per_run"] = per_run
    result["across_runs"] = across_runs(sa, sb, ev, n_seeds, hib, seed)
    return result


def compare_pair(runs: PairedRuns, a: str, b: str, ev: EvaluationConfig, seed: int = 0) -> dict[str, Any]:
    """The verdict on ``ev.primary`` for A against B, with its interval, tests and per-run details."""
    m, thr = ev.primary, ev.threshold
    sa, sb = runs.scores(m, thr)
    reps = paired_bootstrap(runs, m, thr, ev.n_boot, seed)
    p_perm = paired_permutation(runs, m, thr, ev.n_permutations, seed)
    per_run = []
    for (s, f) in runs.keys:
        y = runs.y[f]
        ca, cb = (runs.a[s, f] >= thr) == y.astype(bool), (runs.b[s, f] >= thr) == y.astype(bool)
        per_run.append({"seed": s, "fold": f, "mcnemar_accuracy": mcnemar_exact(ca, cb),
                        "delong_auroc": delong(y, runs.a[s, f], runs.b[s, f])})
    n_test = int(sum(len(v) for v in runs.y.values()))
    return pair_result(a, b, ev, runs, sa, sb, reps, p_perm, n_test, per_run, seed)


def across_runs(sa: np.ndarray, sb: np.ndarray, ev: EvaluationConfig, n_seeds: int, hib: bool, seed: int) -> dict:
    """Tests on the per-run scores: BCa interval, correlated t-test, Wilcoxon, optionally ASO."""
    diffs = sa - sb
    out = {"differences": [float(x) for x in diffs], "bca": bca_interval(diffs, 1 - ev.alpha, seed),
           "correlated_ttest": correlated_ttest(sa, sb, ev.min_effect, n_seeds), "wilcoxon": wilcoxon(diffs)}
    if ev.aso:
        sign = 1 if hib else -1
        out["aso"] = almost_stochastic_order(sign * sa, sign * sb, ev.alpha, seed)
    return out


def dense_runs(evaluations: dict, df: pd.DataFrame, a: str, b: str, task_name: str, ev: EvaluationConfig):
    """Both contenders' per-image tables of the primary metric (those ``collect_results`` kept), matched
    by (seed, fold) and image id."""
    from bakeoff.report.tables import task_for
    from bakeoff.stats.dense import DenseRuns

    m = ev.primary

    def tables_of(contender: str) -> dict[tuple[int, int], tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]]:
        out = {}
        for _, r in df[(df["contender"] == contender) & (df["status"] == "done")].iterrows():
            e = evaluations[(contender, r["run_id"])]
            test = e["preds"]["test"]
            t = e.get("tables", {}).get("test", {}).get(m)
            if t is None:  # a boundary metric with boundary_metrics off: computed for the verdict only
                t = task_for(task_name, {"test": test}, ev).tables(test, boundary=True)[m]
            order = np.argsort(test["ids"])
            out[(int(r["seed"]), int(r["fold"]))] = (test["ids"][order], (t[0][order], t[1][order]))
        return out

    pa, pb = tables_of(a), tables_of(b)
    keys = sorted(set(pa) & set(pb))
    if not keys:
        return None
    for k in keys:
        if not np.array_equal(pa[k][0], pb[k][0]):
            raise ValueError(f"{a} and {b} were tested on different images in seed {k[0]}, fold {k[1]}")
    return DenseRuns({k: pa[k][1] for k in keys}, {k: pb[k][1] for k in keys}, {k[1]: len(pa[k][0]) for k in keys})


def compare_multiclass_pair(runs, a: str, b: str, ev: EvaluationConfig, seed: int = 0) -> dict[str, Any]:
    """The verdict on ``ev.primary`` for multi-class / ordinal tasks (confusion-matrix metrics, Brier)."""
    from bakeoff.stats.multiclass import multiclass_bootstrap, multiclass_permutation

    m = ev.primary
    sa, sb = runs.scores(m)
    reps = multiclass_bootstrap(runs, m, ev.n_boot, seed)
    p_perm = multiclass_permutation(runs, m, ev.n_permutations, seed)
    per_run = [{"seed": s, "fold": f, "mcnemar_accuracy": mcnemar_exact(runs.a[s, f].argmax(1) == runs.y[f],
                                                                          runs.b[s, f].argmax(1) == runs.y[f])}
               for (s, f) in runs.keys]
    n_test = int(sum(len(v) for v in runs.y.values()))
    return pair_result(a, b, ev, runs, sa, sb, reps, p_perm, n_test, per_run, seed)


def compare_dense_pair(runs, a: str, b: str, ev: EvaluationConfig, seed: int = 0) -> dict[str, Any]:
    """The verdict on ``ev.primary`` for a dense task: images are the unit of resampling and swapping."""
    from scipy import stats as sps

    from bakeoff.stats.dense import dense_bootstrap, dense_permutation

    sa, sb = runs.scores()
    reps = dense_bootstrap(runs, ev.n_boot, seed)
    p_perm = dense_permutation(runs, ev.n_permutations, seed)
    per_run = []
    for (s, f) in runs.keys:
        ia, ib = runs.image_scores((s, f))
        ok = ~(np.isnan(ia) | np.isnan(ib))
        entry: dict[str, Any] = {"seed": s, "fold": f, "images": int(ok.sum())}
        if ok.sum() >= 6 and np.any(ia[ok] != ib[ok]):
            w = sps.wilcoxon(ia[ok], ib[ok])
            entry["wilcoxon_images"] = {"statistic": float(w.statistic), "p_value": float(w.pvalue)}
        else:
            entry["wilcoxon_images"] = {"note": "needs >= 6 images with defined, not all equal, scores"}
        per_run.append(entry)
    n_test = int(sum(runs.n_images.values()))
    return pair_result(a, b, ev, runs, sa, sb, reps, p_perm, n_test, per_run, seed, unit="image", stratified=False)


def adjust_pairs(pairs: list[dict[str, Any]], metric: str, alpha: float = 0.05) -> dict[str, str]:
    """Holm-adjust the pairs' p-values in place and decide each verdict on the adjusted p-value, so
    that comparing many pairs does not inflate the chance of a false "better"."""
    for p, adj in zip(pairs, holm([p["p_value"] for p in pairs])):
        p["p_value_holm"] = adj
        p["verdict"] = verdict(p["a"], p["b"], p["difference"], p["ci_low"], p["ci_high"], p["min_effect"],
                               p["higher_is_better"], adj, alpha)
        if p["verdict"] == "inconclusive" and "to_resolve" not in p:
            n_seeds = len({r["seed"] for r in p.get("per_run", [])}) or 1
            p["to_resolve"] = resolution_estimate(p["difference"], p["ci_low"], p["ci_high"], p["min_effect"],
                                                  p["n_test_samples"], n_seeds)
    return {"method": "Holm (statsmodels multipletests method='holm')",
            "family": f"the {len(pairs)} pair(s) compared on the primary metric {metric}; "
                      f"verdicts use the adjusted p-values; per-run McNemar/DeLong/Wilcoxon p-values are "
                      f"not adjusted"}


def compare_study(study: StudyConfig, df: pd.DataFrame, evaluations: dict, run_infos: list[dict],
                  tuned: dict[str, dict[str, Any]] | None = None) -> dict:
    """Verdicts for the baseline against each contender (or all pairs), Holm-adjusted, and the audit."""
    order = [c for c in study.contenders if c in set(df.get("contender", []))]
    out: dict[str, Any] = {
        "primary": study.evaluation.primary, "baseline": study.baseline, "alpha": study.evaluation.alpha,
        "min_effect": study.evaluation.min_effect, "threshold": study.evaluation.threshold, "pairs": [],
    }
    dense = study.task in DENSE_TASKS
    multi = study.task in ("multiclass_classification", "ordinal_classification")
    if dense and study.evaluation.primary == "pixel_auroc":
        out["note"] = "pixel_auroc is not a sum over images; choose another primary metric for verdicts"
    elif multi and study.evaluation.primary not in PAIRED_METRICS:
        out["note"] = (f"paired verdicts for {study.task} are computed for {list(PAIRED_METRICS)}; "
                       f"{study.evaluation.primary} is reported per run only")
    elif study.task == "binary_classification" and study.evaluation.primary not in BINARY_METRICS:
        out["note"] = "paired per-sample comparisons are implemented for binary classification metrics only"
    else:
        base = study.baseline
        if study.evaluation.pairs == "all":
            pairs = list(combinations(order, 2))
        else:
            pairs = [(c, base) for c in order if c != base]
        for i, (a, b) in enumerate(pairs):
            if multi:
                runs = pair_runs(evaluations, df, a, b)
                if runs is not None:
                    k = next(iter(runs.a.values())).shape[1]
                    mruns = MulticlassRuns({f: v.astype(np.int64) for f, v in runs.y.items()}, runs.a, runs.b, k)
                    out["pairs"].append(compare_multiclass_pair(mruns, a, b, study.evaluation, seed=i))
                continue
            if dense:
                runs = dense_runs(evaluations, df, a, b, study.task, study.evaluation)
                if runs is not None:
                    out["pairs"].append(compare_dense_pair(runs, a, b, study.evaluation, seed=i))
                continue
            runs = pair_runs(evaluations, df, a, b)
            if runs is not None:
                out["pairs"].append(compare_pair(runs, a, b, study.evaluation, seed=i))
        out["multiple_testing"] = adjust_pairs(out["pairs"], study.evaluation.primary, study.evaluation.alpha)
    overrides = {c: cfg.protocol for c, cfg in study.contenders.items()}
    tuning = None
    if study.tuning.mode != "none":
        tuning = {"mode": study.tuning.mode, "trials_per_contender": study.tuning.trials,
                  "space": {k: v.model_dump(exclude_none=True) for k, v in study.tuning.space.items()},
                  "judged_on": "validation split of fold 0, first seed", "best": tuned or {}}
    out["fairness"] = fairness_audit(run_infos, overrides, tuning)
    return out
