"""``bakeoff plan``: from a finished (pilot) study, how many seeds and test samples would decide each pair.

Reads only ``comparison.json``: each pair's variance components (training runs, test units shared by
all runs, their interaction), estimated by ``bakeoff.stats.design``. For a grid of seeds x test-set
sizes it simulates studies from those components, judges each with the same rule as a real verdict
(t interval on Satterthwaite degrees of freedom, margin, TOST) and reports the power to call the pair
and the expected half-width of its interval.
"""

from __future__ import annotations

from typing import Any

from bakeoff.errors import BakeoffError
from bakeoff.stats.design import (
    ASSURANCE,
    SECOND_PILOT_SEEDS,
    CannotPlan,
    draw_components,
    reaches,
    seeds_per_test_set,
    simulate_power,
)

DEFAULT_SEEDS = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20)
DEFAULT_TEST_FACTORS = (0.5, 1.0, 2.0, 4.0)


def plan_pair(pair: dict[str, Any], alpha: float, min_effect: float | None = None, effect: float | None = None,
              seeds: tuple[int, ...] = DEFAULT_SEEDS, test_factors: tuple[float, ...] = DEFAULT_TEST_FACTORS,
              target: float = 0.8, sims: int = 2000, seed_sd: float | None = None) -> dict[str, Any]:
    """Power and interval half-width of one pair on each (seeds, test units) design of the grid
    (``bakeoff.stats.design.simulate_power``: the pilot's variance components drawn from their
    uncertainty, not plugged in; the median power over those draws, its 10-90 % range, and the predictive
    power ``p_better``), and the cheapest design that reaches ``target`` with probability ``ASSURANCE``."""
    comp = (pair.get("design") or {}).get("components")
    if not comp or not comp.get("groups"):
        raise BakeoffError(f"comparison.json: pair {pair.get('a')} - {pair.get('b')} has no variance components; "
                           f"expected a comparison written by this version: run `bakeoff report DIR` first")
    margin = pair["min_effect"] if min_effect is None else min_effect
    d = pair["difference"] if effect is None else effect
    seeds_now = seeds_per_test_set(comp)
    units_now = sum(g["test_units"] for g in comp["groups"])
    out = {"a": pair["a"], "b": pair["b"], "metric": pair["metric"], "effect": d, "min_effect": margin,
           "effect_source": "observed difference" if effect is None else "--effect",
           "seeds_now": seeds_now, "test_units_now": units_now, "unit": pair.get("unit", "sample"),
           "variance_shares": pair["design"].get("variance_shares"), "grid": [], "target_power": target,
           "smallest_design": None, "seed_sd": seed_sd,
           # the directional verdict the effect would earn: its power is what the grid shows
           "verdict": "better" if (d >= 0) == bool(pair.get("higher_is_better", True)) else "worse"}
    try:
        draws = draw_components(comp, sims, 0, seed_sd)
    except CannotPlan as exc:
        out["cannot_plan"] = str(exc)
        out["second_pilot_seeds"] = SECOND_PILOT_SEEDS
        out["note"] = str(exc)
        return out
    kfold = bool(draws["comp"].get("seeds_across_folds"))
    for s in seeds:
        for tf in test_factors:
            if s == 1 and kfold:  # a corrected resampled t over folds: its fold correlation is assumed
                out["grid"].append({"seeds": 1, "test_units": int(round(units_now * tf)), "power": None,
                                    "p_equivalent": None, "half_width": None, "power_range": None,
                                    "scope": "not simulated"})
                continue
            sim = simulate_power(comp, d, margin, alpha, s, tf, sims=sims, draws=draws)
            out["grid"].append({"seeds": s, "test_units": int(round(units_now * tf)), "power": sim["power"],
                                "power_range": sim["power_range"], "power_assured": sim["power_assured"],
                                "reaches": reaches(sim, target), "p_better": sim["p_better"],
                                "p_equivalent": sim["p_equivalent"], "half_width": sim["half_width"],
                                "scope": "trained weights" if s == 1 else "training recipe"})
    # one seed judges the trained weights, not the training recipe: never proposed for the question; nor
    # fewer test units than the pilot had (a smaller test set is another draw of units, whose share of the
    # variance the pilot knows least: such proposals delivered 0.40-0.67 where 0.80-0.89 was promised)
    enough = [r for r in out["grid"] if r["power"] is not None and r["reaches"] and r["seeds"] > 1
              and r["test_units"] >= units_now]
    out["smallest_design"] = min(enough, key=lambda r: (r["seeds"] * r["test_units"], r["seeds"])) if enough else None
    best = out["smallest_design"]
    if best is not None:  # how far from its median the power may lie (10-90 %): above 0.10, the CLI says so
        best["known_within"] = float(max(best["power"] - best["power_range"][0], best["power_range"][1] - best["power"]))
    out["note"] = (f"power = the probability of the verdict '{out['verdict']}' beyond the margin if the true "
                   f"difference were {d:+.4g} ({out['effect_source']}), given what this pilot leaves plausible: "
                   f"{sims} draws of the variance components from their uncertainty (with few seeds the "
                   f"seed-to-seed variance is uncertain), each giving the design a power; shown: their median "
                   f"and, beside a proposal, their 10th to 90th percentile (how well this pilot knows it). "
                   f"* marks the designs that reach {target:.0%} with probability {ASSURANCE:.0%}; the cheapest "
                   f"is proposed. Rows of 1 seed are verdicts on the trained weights only, and designs with "
                   f"fewer test {out['unit']}s than today's, never proposed")
    return out


def plan_study(comparison: dict[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
    pairs = comparison.get("pairs") or []
    if not pairs:
        raise BakeoffError("comparison.json: no compared pairs; expected a finished study with a verdict on the "
                           "primary metric")
    alpha = comparison.get("alpha", 0.05)
    return [plan_pair(p, alpha, **kwargs) for p in pairs]


def grid_table(plan: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Rows seeds, columns test-set sizes, cells 'power (± half-width)'; one-seed cells judge the trained
    weights only ('weights')."""
    sizes = sorted({r["test_units"] for r in plan["grid"]})
    seeds = sorted({r["seeds"] for r in plan["grid"]})
    cell = {(r["seeds"], r["test_units"]): r for r in plan["grid"]}
    header = ["seeds"] + [f"{n:,} test {plan['unit']}s" for n in sizes]
    body = []
    for s in seeds:
        row = [str(s)]
        for n in sizes:
            r = cell[s, n]
            if r["power"] is None:
                row.append("—")
                continue
            mark = "*" if r.get("reaches") and s > 1 else ""
            weights = " weights" if s == 1 else ""
            row.append(f"{r['power']:.2f}{mark}{weights} (±{r['half_width']:.3g})")
        body.append(row)
    return header, body


def shares_text(shares: dict[str, float] | None) -> str:
    if not shares:
        return "variance shares: not separable (one run per test set)"
    return ("variance of the difference: " + ", ".join(f"{k.replace('_', ' ')} {v:.0%}" for k, v in shares.items()))

