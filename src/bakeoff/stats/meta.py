"""Across datasets: is B better than A on data like these? Datasets as the replicates.

Each dataset's study gives the pair's design-aware paired difference and its standard error
(``compare.pair_result``: ``difference``, ``se``). Across k datasets the question "is B better on data of
this kind?" treats the datasets as draws from a population of datasets whose true effects spread around a
mean mu with variance tau². The rule here estimates mu by the plain mean of the k differences (each dataset
counts once) with its t interval on k - 1 degrees of freedom from their observed spread, and the verdict
words and tests of a single study (``design.claim_tests``, ``verdict.verdict``) on that t distribution.

Why not inverse-variance weights with the Hartung–Knapp–Sidik–Jonkman interval, the usual random-effects
choice (statsmodels' ``combine_effects``)? Because a study's standard error rests on few degrees of freedom
(2 with three seeds), and weighting by such noisy variances gives the datasets whose error happens to be
underestimated most of the say: in 1,000 simulated suites of 10 datasets with no effect at all (errors
from 3 seeds), HKSJ with Paule–Mandel tau² called "better/worse" 10.7 % of the time at alpha 0.05; this
rule 4.5 % (tests/stats/test_meta.py). The spread of the observed differences already holds both tau² and each study's own error, so the
plain t interval needs neither estimated. statsmodels still gives the descriptive between-dataset spread
(Paule–Mandel tau², I²) that the result reports beside it.

The prediction interval is for the effect on a *new* dataset of this kind, as the standard prediction
interval of a new draw: mean ± t_{k-1} s sqrt(1 + 1/k), s the spread of the differences. It covers the
new dataset's difference as a study of the same design would measure it (about 95 % in the simulations)
and its true effect conservatively (96 % or more). It needs k ≥ 3; with fewer datasets nothing is said
about "datasets like these", and the result says so (the per-dataset verdicts still hold for those).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from bakeoff.stats.design import Estimate, GroupEstimate, claim_tests
from bakeoff.stats.verdict import verdict

METHOD = ("datasets as replicates: the mean of the per-dataset differences with a t interval on k - 1 df from "
          "their spread; prediction interval for a new dataset mean ± t(k-1) s sqrt(1 + 1/k); between-dataset "
          "spread tau² (Paule–Mandel) and I² from statsmodels")
FEW = 5  # below this many datasets tau² rests on very few degrees of freedom: said in the notes


def across_datasets(a: str, b: str, effects: list[float], ses: list[float], names: list[str], *,
                    alpha: float = 0.05, min_effect: float = 0.0, higher_is_better: bool = True) -> dict[str, Any]:
    """The pooled effect of A - B over datasets ``names`` (their paired differences ``effects`` with
    standard errors ``ses``), its interval, p-values, tau², I², the prediction interval for a new dataset
    and the verdict."""
    y = np.asarray(effects, float)
    se = np.asarray(ses, float)
    k = len(y)
    out: dict[str, Any] = {"a": a, "b": b, "k": k, "method": METHOD, "higher_is_better": higher_is_better,
                           "min_effect": min_effect, "alpha": alpha,
                           "datasets": [{"name": n, "difference": float(d), "se": float(s)}
                                        for n, d, s in zip(names, y, se)], "notes": []}
    if k < 2:
        out.update(difference=float(y[0]) if k else float("nan"), verdict="inconclusive",
                   prediction_interval=None, tau2=None, i2=None)
        out["notes"].append("one dataset: nothing can be said across datasets; its own verdict stands for it")
        return out
    from statsmodels.stats.meta_analysis import combine_effects

    mean, s2 = float(y.mean()), float(y.var(ddof=1))
    unit = GroupEstimate(list(range(k)), k, k, mean, s2 / k, [(s2 / k, k - 1)], None, 0.0, 0.0)
    est = Estimate(mean, s2 / k, k - 1, "datasets", [unit], method=METHOD)  # k datasets: the sign-flip bound's units
    tests = claim_tests(est, min_effect, alpha)
    out.update(difference=mean, se=float(np.sqrt(s2 / k)), df=float(k - 1),
               **{key: tests[key] for key in ("ci_low", "ci_high", "p_value", "p_margin", "p_equivalence")},
               ci_equivalence=tests.get("ci_equivalence"))
    if np.all(np.isfinite(se)) and np.all(se > 0):  # the between-dataset spread, as meta-analysts report it
        res = combine_effects(y, se ** 2, method_re="iterated", row_names=list(names))
        out.update(tau2=float(res.tau2), tau=float(np.sqrt(res.tau2)), i2=max(0.0, float(res.i2)), q=float(res.q))  # I² below 0 is reported as 0
    else:
        out.update(tau2=None, tau=None, i2=None, q=None)
    if k >= 3:
        half = float(stats.t.ppf(1 - alpha / 2, k - 1) * np.sqrt(s2 * (1 + 1 / k)))
        out["prediction_interval"] = [mean - half, mean + half]
    else:
        out["prediction_interval"] = None
        out["notes"].append("2 datasets: too few to say anything about a new dataset of this kind (a prediction "
                            "interval needs 3 or more); the pooled effect is about these two only")
    if 2 < k < FEW:
        out["notes"].append(f"{k} datasets: the interval and the prediction for a new dataset rest on {k - 1} degrees "
                            f"of freedom, so they are wide; more datasets narrow them")
    out["verdict"] = verdict(a, b, mean, min_effect, higher_is_better, tests["p_margin"], tests["p_equivalence"], alpha)
    return out


NORMALISATIONS = {
    "none": "none: every dataset is judged on the same metric, so differences are pooled as measured",
    "relative": "relative: each dataset's difference (and its standard error) divided by the second-named "
                "contender's mean score on that dataset, so datasets whose metric has different units or "
                "ranges count on one scale (a fraction of the reference's score); the across-dataset margin "
                "is then 0, so no 'equivalent' is claimed across datasets",
}


def suite_comparison(per_dataset: dict[str, dict[str, Any]], alpha: float = 0.05,
                     normalise: str = "none") -> dict[str, Any]:
    """The across-dataset answer from each dataset's ``comparison.json``: for every pair compared in all of
    them, ``across_datasets`` on its per-dataset differences and standard errors (``normalise``: one of
    ``NORMALISATIONS``), Holm across the pairs (verdicts on the adjusted p-values, as within a study), and
    the per-dataset win/tie/loss counts from the datasets' own verdicts."""
    from bakeoff.stats.across import holm

    names = list(per_dataset)
    first = next(iter(per_dataset.values()), {}) if names else {}
    keys = [(p["a"], p["b"]) for p in first.get("pairs", [])]
    pairs, missing = [], []
    for a, b in keys:
        found = {n: next((p for p in c.get("pairs", []) if (p["a"], p["b"]) == (a, b)), None)
                 for n, c in per_dataset.items()}
        have = [n for n, p in found.items() if p is not None]
        if len(have) < len(names):
            missing.append({"a": a, "b": b, "missing_in": [n for n in names if n not in have]})
        if not have:
            continue
        ps = [found[n] for n in have]
        scale = [1.0] * len(ps)
        if normalise == "relative":
            scale = [abs(float(p["contenders"][b]["mean"])) for p in ps]
            if not all(np.isfinite(scale)) or min(scale) == 0:
                raise ValueError(f"normalise: relative needs {b}'s mean score nonzero on every dataset, got {scale}")
        res = across_datasets(a, b, [p["difference"] / k for p, k in zip(ps, scale)],
                              [p["se"] / k for p, k in zip(ps, scale)], have, alpha=alpha,
                              min_effect=0.0 if normalise == "relative" else ps[0]["min_effect"],
                              higher_is_better=ps[0]["higher_is_better"])
        if normalise == "relative":
            res["reference_scores"] = dict(zip(have, scale))
        words = [p["verdict"] for p in ps]
        res["per_dataset"] = {n: {"verdict": p["verdict"], "difference": p["difference"], "ci_low": p["ci_low"],
                                  "ci_high": p["ci_high"]} for n, p in zip(have, ps)}
        res["wins"] = {"a": sum(w.startswith(f"{a} better") for w in words),
                       "b": sum(w.startswith(f"{b} better") for w in words),
                       "equivalent": sum(w.startswith("equivalent") for w in words),
                       "inconclusive": sum(not (w.startswith(f"{a} better") or w.startswith(f"{b} better")
                                                or w.startswith("equivalent")) for w in words)}
        pairs.append(res)
    judged = [p for p in pairs if "p_margin" in p]
    for p, adj, adj_eq in zip(judged, holm([p["p_margin"] for p in judged]), holm([p["p_equivalence"] for p in judged])):
        p["p_value_holm"], p["p_equivalence_holm"] = adj, adj_eq
        p["verdict"] = verdict(p["a"], p["b"], p["difference"], p["min_effect"], p["higher_is_better"], adj, adj_eq,
                               alpha)
    return {"datasets": names, "primary": first.get("primary"), "alpha": alpha, "method": METHOD,
            "normalisation": NORMALISATIONS[normalise],
            "multiple_testing": f"Holm over the {len(judged)} pair(s); verdicts use the adjusted p-values",
            "pairs": pairs, "pairs_not_in_every_dataset": missing}


def more_datasets(pair: dict[str, Any], alpha: float = 0.05) -> str:
    """What more datasets would buy for one pair of a suite's answer (``suite_comparison``, k >= 2): the t
    interval's width with k + 1, 2k and 3k datasets of the same spread, as multiples of today's, and
    whether the spread is mostly between datasets (I²)."""
    k = int(pair["k"])
    now = stats.t.ppf(1 - alpha / 2, k - 1) / k ** 0.5
    more = ", ".join(f"{m}: x{stats.t.ppf(1 - alpha / 2, m - 1) / m ** 0.5 / now:.2f}" for m in (k + 1, 2 * k, 3 * k))
    i2 = pair.get("i2")
    where = ("" if i2 is None else
             f"; I² {i2:.0%}: most of that spread is between datasets, which only more datasets average out"
             if i2 >= 0.5 else f"; I² {i2:.0%}: most of that spread is each dataset's own noise, which more "
             f"seeds or test units (the plans above) shrink too")
    return (f"across datasets, {pair['a']} − {pair['b']}: the pooled interval rests on the spread of the {k} "
            f"datasets' differences ({k - 1} df){where}; with more datasets of the same spread its width would be "
            f"about {more} of today's")
