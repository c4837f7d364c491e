"""Sequential bake-offs: add one seed per contender per round, only while a pair is undecided, with the
chance of a false verdict over all the looks held at alpha.

The rule (a group-sequential design, Jennison & Turnbull 2000, ch. 7): the study is looked at after
``s0, s0 + 1, ..., max_seeds`` seeds; look k spends the part alpha(t_k) - alpha(t_{k-1}) of the error
rate given by a Lan–DeMets spending function (O'Brien–Fleming-like: 2 - 2 Phi(z_{alpha/2} / sqrt(t));
Pocock-like: alpha ln(1 + (e - 1) t)) at the information fraction t_k: the variance of the mean difference
at the budget over its variance now. Every seed shares the test set, so that variance has a floor and
information grows more slowly than the seeds: three seeds of ten may already hold 70 % of it, and spending
by the seeds' count (t = 3/10) wasted the early looks. t_k is estimated at each look from the pair's
variance components, with the run variance at its upper ``INFO_QUANTILE`` bound (a cautious fraction),
the smallest over pairs, never below seeds / max_seeds (error spending with estimated information, Lan &
DeMets 1989). The nominal level of look k is the one at which a two-sided test on the path of a
standardised Brownian motion with those fractions crosses with exactly the spent probability, having
stayed inside the levels the earlier looks used (Monte Carlo: no maintained Python library computes
Lan–DeMets boundaries; gsDesign and ldbounds are R). The verdict at a look is the study's verdict rule
(its design-aware t test, Holm across pairs) at that nominal level, for 'better' and for 'equivalent'
alike. The calibration suite checks the whole procedure by simulation.

Stopping: every pair decided (better, worse or equivalent at the look's level); or futility: for every
undecided pair, the planner's predictive probability of a verdict by ``max_seeds`` (at the last look's
level, the observed difference taken as true) is below ``FUTILITY``; or the budget (``max_seeds``).
Futility stops are non-binding: they can only lower the error rate.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import stats

FUTILITY = 0.10  # below this predictive probability of any verdict by the budget, stop adding seeds
MIN_SEEDS = 3  # the first look: a seed-to-seed variance on 2 degrees of freedom
PATHS = 100_000  # Monte Carlo paths for the boundaries (their error: about 0.0007 in alpha)
INFO_QUANTILE = 0.75  # the run variance's upper bound used for the information fractions (calibration suite)


def spent(t: np.ndarray, alpha: float, spending: str) -> np.ndarray:
    """Cumulative alpha spent by information fraction ``t`` (Lan & DeMets 1983)."""
    t = np.clip(np.asarray(t, float), 1e-12, 1.0)
    if spending == "obrien_fleming":
        return 2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / np.sqrt(t))
    if spending == "pocock":
        return alpha * np.log(1 + (np.e - 1) * t)
    raise ValueError(f"spending {spending!r}: expected 'obrien_fleming' or 'pocock'")


@lru_cache(maxsize=128)
def _column(j: int) -> np.ndarray:
    """The j-th look's standard normal increments, the same in every call (common random numbers)."""
    return np.random.default_rng(j).standard_normal(PATHS)


def _crossing_level(t: np.ndarray, past: list[float], target: float) -> float:
    """The two-sided nominal level of look ``len(past)`` (information fractions ``t`` up to it) at which a
    standardised Brownian motion crosses with probability ``target`` having stayed inside the boundaries
    of the ``past`` looks' levels (Monte Carlo on fixed paths)."""
    if target <= 0:
        return 0.0
    alive = np.ones(PATHS, bool)
    W = np.zeros(PATHS)
    prev = 0.0
    for j, tj in enumerate(t):
        W = W + _column(j) * np.sqrt(max(tj - prev, 0.0))
        prev = tj
        Z = np.abs(W / np.sqrt(max(tj, 1e-12)))
        if j < len(past):
            alive &= Z <= (stats.norm.isf(past[j] / 2) if past[j] > 0 else np.inf)
            continue
        z = Z[alive]
        if len(z) == 0:
            return 0.0
        q = min(target * PATHS / len(z), 1.0)  # P(|Z_k| > c and alive) = target
        return float(2 * stats.norm.sf(float(np.quantile(z, 1 - q))))
    raise ValueError("t has no entry for the current look")


@lru_cache(maxsize=64)
def nominal_levels(seeds: tuple[int, ...], max_seeds: int, alpha: float, spending: str) -> tuple[float, ...]:
    """The two-sided nominal level of each look at ``seeds`` (increasing, the last = ``max_seeds``) when
    information grows with the seeds (t = seeds / max_seeds): the levels before any data are seen."""
    t = np.array(seeds, float) / max_seeds
    cum = spent(t, alpha, spending)
    levels: list[float] = []
    for k in range(len(t)):
        levels.append(_crossing_level(t[:k + 1], levels, cum[k] - (cum[k - 1] if k else 0.0)))
    return tuple(levels)


def information_fraction(comp: dict[str, Any], seeds: int, at: int, max_seeds: int) -> float | None:
    """The share of the budget's information (1 / variance of the mean difference) that ``at`` seeds give,
    from a look at ``seeds`` seeds: var(n) = sum over test sets of (run variance / runs(n) + shared) / G².
    The test units every seed shares put a floor under the variance, so information grows more slowly than
    the seeds; the run variance is taken at its upper ``INFO_QUANTILE`` bound on its degrees of freedom
    (a larger run variance means a smaller fraction now: the cautious side). None when the design does not
    estimate it (one run per test set)."""
    from bakeoff.stats.design import _run_var

    groups = comp.get("groups") or []
    if not groups or comp.get("pooled_over_folds") or any((g.get("runs") or 0) < 2 for g in groups):
        return None
    df = float(sum(g["runs"] - 1 for g in groups))
    inflate = df / stats.chi2.ppf(1 - INFO_QUANTILE, df)
    G = len(groups)

    def var(n: int) -> float:
        out = 0.0
        for g in groups:
            rv = max(_run_var(g), float(g["churn"]), 0.0) * inflate
            out += rv / (g["runs"] * n / seeds) + max(float(g["shared"]), 0.0)
        return out / G ** 2

    v_at, v_max = var(at), var(max_seeds)
    if not np.isfinite(v_at) or v_at <= 0:
        return None
    return float(min(1.0, v_max / v_at))


def look_fractions(pairs: list[dict[str, Any]], seeds: int, looks: tuple[int, ...], max_seeds: int) -> np.ndarray:
    """Every look's information fraction as estimated now: per pair from its variance components, the
    smallest over pairs (the most cautious), and never below seeds / max_seeds (information grows at least
    as fast as the seeds when nothing is shared). Falls back to seeds / max_seeds where a pair cannot say."""
    base = np.array(looks, float) / max_seeds
    each = []
    for p in pairs:
        comp = (p.get("design") or {}).get("components")
        f = [information_fraction(comp, seeds, n, max_seeds) if comp else None for n in looks]
        if any(x is None for x in f):
            return base
        each.append(f)
    if not each:
        return base
    t = np.min(np.array(each, float), axis=0)
    return np.maximum.accumulate(np.clip(np.maximum(t, base), 1e-9, 1.0))


def settings(seq: Any, seeds_now: int, max_seeds: int | None = None) -> dict[str, Any]:
    """The procedure's parameters from ``evaluation.sequential`` (or the CLI), checked."""
    first = max(MIN_SEEDS, seeds_now)
    top = max_seeds if max_seeds is not None else seq.max_seeds
    return {"first": first, "max_seeds": max(top, first), "spending": seq.spending,
            "looks": list(range(first, max(top, first) + 1))}


def judge_look(comparison: dict[str, Any], seeds: int, rule: dict[str, Any], alpha: float,
               history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The look at ``seeds`` seeds: each pair's verdict at the look's nominal level (Holm across pairs),
    and whether to stop (decided, futile, budget). Returns the look's record; the pairs are not changed."""
    from bakeoff.stats.compare import adjust_pairs
    from bakeoff.stats.design import CannotPlan, draw_components, simulate_power

    looks = tuple(rule["looks"])
    k = looks.index(seeds) if seeds in looks else len(looks) - 1
    past = list(history or [])[-k:] if k else []
    pairs = comparison.get("pairs") or []
    if rule.get("information", "estimated") == "estimated" and len(past) == k:
        t = look_fractions(pairs, seeds, looks[:k + 1], rule["max_seeds"])
        before = float(past[-1]["alpha_spent"]) if past else 0.0
        cum = alpha if seeds >= rule["max_seeds"] else max(before, float(spent(t[k:k + 1], alpha,
                                                                                rule["spending"])[0]))
        level = _crossing_level(t, [float(lk["nominal_alpha"]) for lk in past], cum - before)
        # for futility: the budget's level were the study to go straight there from this look
        final_level = _crossing_level(np.append(t, 1.0), [float(lk["nominal_alpha"]) for lk in past] + [level],
                                      alpha - cum) if seeds < rule["max_seeds"] else level
    else:
        t = np.array(looks[:k + 1], float) / rule["max_seeds"]
        levels = nominal_levels(looks, rule["max_seeds"], alpha, rule["spending"])
        level, cum = levels[k], float(spent(t[k:k + 1], alpha, rule["spending"])[0])
        final_level = levels[-1]
    pairs = copy.deepcopy(comparison.get("pairs") or [])
    adjust_pairs(pairs, comparison.get("primary", ""), level, advise=False)
    verdicts = {f"{p['a']} - {p['b']}": p["verdict"] for p in pairs}
    undecided = [p for p in pairs if p["verdict"] == "inconclusive"]
    reason = None
    chances = {}
    if not undecided:
        reason = "decided"
    elif seeds >= rule["max_seeds"]:
        reason = "budget"
    else:
        last = final_level / max(len(pairs), 1)
        for p in undecided:
            comp = p["design"]["components"]
            try:
                draws = draw_components(comp, 1000, 0, p.get("seed_sd"))
            except CannotPlan:
                chances[f"{p['a']} - {p['b']}"] = None
                continue
            sim = simulate_power(comp, p["difference"], p["min_effect"], last, rule["max_seeds"], 1.0, 1000,
                                 draws=draws)
            chances[f"{p['a']} - {p['b']}"] = max(sim["p_better"], sim["p_equivalent"])
        if chances and all(c is not None and c < FUTILITY for c in chances.values()):
            reason = "futile"
    return {"seeds": seeds, "look": k + 1, "information_fraction": float(t[k]), "nominal_alpha": level,
            "alpha_spent": float(cum), "verdicts": verdicts, "chance_of_a_verdict_by_budget": chances, "stop": reason}


def apply_to_comparison(comparison: dict[str, Any], record: dict[str, Any], alpha: float) -> None:
    """Make the comparison's verdicts those of the sequential rule at its last look (in place) and say so."""
    from bakeoff.stats.compare import adjust_pairs

    last = record["looks"][-1]
    if comparison.get("pairs"):
        adjust_pairs(comparison["pairs"], comparison.get("primary", ""), last["nominal_alpha"])
        for p in comparison["pairs"]:
            p["sequential_alpha"] = last["nominal_alpha"]
    comparison["sequential"] = {**{k: v for k, v in record.items() if k != "looks"}, "looks": record["looks"],
                                "text": describe(record, alpha)}


def describe(record: dict[str, Any], alpha: float) -> str:
    """The rule, the looks and the alpha spent, in one paragraph."""
    looks = record["looks"]
    last = looks[-1]
    why = {"decided": "every pair was decided", "futile": "no undecided pair could still be decided within the "
           "budget (predictive probability below 10 %)", "budget": "the budget of seeds was reached",
           None: "the study was stopped before a stopping rule was met"}[last.get("stop")]
    name = {"obrien_fleming": "O'Brien–Fleming-type", "pocock": "Pocock-type"}[record["spending"]]
    return (f"Sequential design: seeds were added one per contender per round from {record['first']} up to at most "
            f"{record['max_seeds']}, with {name} Lan–DeMets alpha spending at the information fraction estimated "
            f"at each look (overall alpha {alpha:g}). The study was "
            f"looked at {len(looks)} time(s) (after {', '.join(str(lk['seeds']) for lk in looks)} seeds) and stopped "
            f"because {why}; the verdicts are those at the last look's nominal level {last['nominal_alpha']:.4g} "
            f"(alpha spent {last['alpha_spent']:.4g} of {alpha:g}).")
