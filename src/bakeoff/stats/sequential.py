"""Sequential bake-offs: add one seed per contender per round, only while a pair is undecided, with the
chance of a false verdict over all the looks held at alpha.

The rule (a group-sequential design, Jennison & Turnbull 2000, ch. 7): the study is looked at after
``s0, s0 + 1, ..., max_seeds`` seeds; look k uses the information fraction t_k = seeds_k / max_seeds and
spends the part alpha(t_k) - alpha(t_{k-1}) of the error rate given by a Lan–DeMets spending function
(O'Brien–Fleming-like: 2 - 2 Phi(z_{alpha/2} / sqrt(t)); Pocock-like: alpha ln(1 + (e - 1) t)). The
nominal level of each look is the one at which a two-sided test on the path of a standardised Brownian
motion crosses with exactly that probability having not crossed before (found by Monte Carlo: no
maintained Python library computes Lan–DeMets boundaries; gsDesign and ldbounds are R). The verdict at a
look is the study's verdict rule (its design-aware t test, Holm across pairs) at that nominal level, for
'better' and for 'equivalent' alike. Seeds add information while the test set stays the same, so looks
are more strongly correlated than the Brownian model assumes, which makes these levels conservative; the
calibration suite checks the whole procedure by simulation.

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
PATHS = 200_000  # Monte Carlo paths for the boundaries (their error: about 0.0005 in alpha)


def spent(t: np.ndarray, alpha: float, spending: str) -> np.ndarray:
    """Cumulative alpha spent by information fraction ``t`` (Lan & DeMets 1983)."""
    t = np.clip(np.asarray(t, float), 1e-12, 1.0)
    if spending == "obrien_fleming":
        return 2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / np.sqrt(t))
    if spending == "pocock":
        return alpha * np.log(1 + (np.e - 1) * t)
    raise ValueError(f"spending {spending!r}: expected 'obrien_fleming' or 'pocock'")


@lru_cache(maxsize=64)
def nominal_levels(seeds: tuple[int, ...], max_seeds: int, alpha: float, spending: str) -> tuple[float, ...]:
    """The two-sided nominal level of each look at ``seeds`` (increasing, the last = ``max_seeds``)."""
    t = np.array(seeds, float) / max_seeds
    cum = spent(t, alpha, spending)
    rng = np.random.default_rng(0)
    steps = np.diff(np.concatenate([[0.0], t]))
    W = np.cumsum(rng.normal(size=(PATHS, len(t))) * np.sqrt(steps), axis=1)
    Z = np.abs(W / np.sqrt(t))
    alive = np.ones(PATHS, bool)
    levels = []
    for k in range(len(t)):
        target = cum[k] - (cum[k - 1] if k else 0.0)  # the probability to spend at this look
        z = Z[alive, k]
        if target <= 0 or len(z) == 0:
            c = np.inf
        else:
            q = min(target * PATHS / len(z), 1.0)  # P(|Z_k| > c and alive) = target
            c = float(np.quantile(z, 1 - q))
        levels.append(float(2 * stats.norm.sf(c)))
        alive &= Z[:, k] <= c
    return tuple(levels)


def settings(seq: Any, seeds_now: int, max_seeds: int | None = None) -> dict[str, Any]:
    """The procedure's parameters from ``evaluation.sequential`` (or the CLI), checked."""
    first = max(MIN_SEEDS, seeds_now)
    top = max_seeds if max_seeds is not None else seq.max_seeds
    return {"first": first, "max_seeds": max(top, first), "spending": seq.spending,
            "looks": list(range(first, max(top, first) + 1))}


def judge_look(comparison: dict[str, Any], seeds: int, rule: dict[str, Any], alpha: float) -> dict[str, Any]:
    """The look at ``seeds`` seeds: each pair's verdict at the look's nominal level (Holm across pairs),
    and whether to stop (decided, futile, budget). Returns the look's record; the pairs are not changed."""
    from bakeoff.stats.compare import adjust_pairs
    from bakeoff.stats.design import CannotPlan, draw_components, simulate_power

    looks = tuple(rule["looks"])
    levels = nominal_levels(looks, rule["max_seeds"], alpha, rule["spending"])
    k = looks.index(seeds) if seeds in looks else len(looks) - 1
    level = levels[k]
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
        last = levels[-1] / max(len(pairs), 1)
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
    return {"seeds": seeds, "look": k + 1, "nominal_alpha": level, "alpha_spent": float(
        spent(np.array([seeds / rule["max_seeds"]]), alpha, rule["spending"])[0]), "verdicts": verdicts,
        "chance_of_a_verdict_by_budget": chances, "stop": reason}


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
            f"{record['max_seeds']}, with {name} Lan–DeMets alpha spending (overall alpha {alpha:g}). The study was "
            f"looked at {len(looks)} time(s) (after {', '.join(str(lk['seeds']) for lk in looks)} seeds) and stopped "
            f"because {why}; the verdicts are those at the last look's nominal level {last['nominal_alpha']:.4g} "
            f"(alpha spent {last['alpha_spent']:.4g} of {alpha:g}).")
