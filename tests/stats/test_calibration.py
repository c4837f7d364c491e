"""The calibration suite: simulated studies judged by the same code as a real study (issue 10's table).

Each null scenario runs 1,000 simulated studies with a fixed seed and asserts a false "better/worse" rate
of at most alpha + 0.02 = 0.07. Monte Carlo bound: if the true rate were exactly 0.05, an estimate from
1,000 studies exceeds 0.07 with probability 0.3% (binomial); the seeds are fixed, so the outcome is
deterministic. ``benchmarks/bench_calibration.py`` prints the full table with more simulations.
"""

from __future__ import annotations

import pytest

from bakeoff.stats.calibration import (
    PLAN_SCENARIOS,
    SCENARIOS,
    SEQUENTIAL_SCENARIOS,
    fixed_seeds_for_power,
    plan_calibration,
    run_scenario,
    run_sequential,
)

ALPHA = 0.05
BOUND = ALPHA + 0.02
NULL_SIMS = 1000

# Power of 858dedb's rule (percentile bootstrap over seeds and samples + permutation test) on the very same
# 500 simulated studies (seed 2026), measured by running these scenarios against a checkout of 858dedb.
BASELINE_POWER = {
    "power: ordinal QWK, 3 seeds, tau 0, sigma 0.9 vs 0.8": 0.098,
    "power: macro-F1, 3 seeds, tau 0, sigma 0.9 vs 0.8": 0.036,
    "power: Dice, 10 images, 5 seeds, tau 0, +0.02": 0.496,
    "power, per-contender streams: Dice, 10 images, 5 seeds, tau 0, +0.02": 0.496,
    # 858dedb treated three seeds' spread as if it could not be larger than it looked; with runs independent by
    # construction (per-contender seed streams) pooling the two contenders' seed spreads (``run_spread``) has
    # that power while staying calibrated: 0.906 and 0.786
    "power, per-contender streams: Dice, 100 images, 3 seeds, tau 0, +0.01": 0.856,
    "power, per-contender streams: binary AUROC, 3 seeds, tau 0, sep +0.3": 0.782,
}
# Where 858dedb over-rejects under the null (tau > 0), or the scenario is newer than it, or the rule pays for
# not assuming what 858dedb assumed, the test asserts the power this rule has, less about 0.03 for Monte Carlo
# error (this rule's rate on these 500 studies beside it).
FLOORS = {
    # instance segmentation, per-image mean AP (issue 45): 0.848 here, 0.845 on 2,000 studies (oracle 0.97)
    "power, instances: mean AP, 50 images, 5 seeds, tau 0.1, +0.3 logit": 0.81,
    "power: Dice, 100 images, 3 seeds, tau 0.01, +0.01 (858dedb over-rejects at this tau)": 0.10,  # 0.116; 858dedb 0.374
    "power: Dice, 10 images, 5 seeds, tau 0.01, +0.02 (858dedb over-rejects at this tau)": 0.33,  # 0.356; 858dedb 0.454
    "power, per-contender streams: binary AUROC, 3 seeds, tau 0.10, sep +0.3": 0.42,  # 0.454
    # shared seed streams (the default): the spread of the paired differences on R - 1 df, the price of not
    # assuming that a seed's runs of two contenders are independent (858dedb's and the pooled rule's 0.856/0.906
    # and 0.782/0.786 above); at a run-level correlation of -0.5 that assumption gave false better/worse 0.09
    "power: Dice, 100 images, 3 seeds, tau 0, +0.01": 0.72,  # 0.754
    "power: binary AUROC, 3 seeds, tau 0, sep +0.3": 0.61,  # 0.646
    "power: binary AUROC, 3 seeds, tau 0.10, sep +0.3": 0.29,  # 0.326
    # two contenders whose runs of one seed move together (one network, another setting): the paired spread
    # removes what they share (0.669 under the earlier rule's preliminary test)
    "power: binary AUROC, 3 seeds, tau 0.10, sep +0.3, a seed's runs of A and B correlated 0.9": 0.68,  # 0.712
    "power: binary AUROC, 3 seeds, tau 0.30, sep +0.3, a seed's run quality of A and B correlated +0.8": 0.09,  # 0.122
}


def _ids(scenarios):
    return [s.name for s in scenarios]


NULLS = [s for s in SCENARIOS if s.expect == "null"]
MARGIN = [s for s in SCENARIOS if s.expect == "margin"]
POWER = [s for s in SCENARIOS if s.expect == "power"]


WEIGHTS = [s for s in SCENARIOS if s.expect == "weights"]


@pytest.mark.parametrize("scenario", NULLS, ids=_ids(NULLS))
def test_false_better_rate_under_the_null(scenario):
    rates = run_scenario(scenario, NULL_SIMS, seed=2024)
    print(f"{scenario.name}: false better/worse {rates['better']:.3f}")
    assert rates["better"] <= BOUND, rates


@pytest.mark.parametrize("scenario", WEIGHTS, ids=_ids(WEIGHTS))
def test_one_seed_verdicts_never_claim_the_recipe(scenario):
    """One seed with real seed-to-seed variation: about the architectures, 'better' would be wrong far more
    often than alpha; every directional verdict is therefore labelled as about the trained weights."""
    rates = run_scenario(scenario, 300, seed=2024)
    print(f"{scenario.name}: directional {rates['better']:.3f}, about the recipe {rates['recipe_better']:.3f}")
    assert rates["better"] > BOUND  # what a recipe claim would have been wrong with
    assert rates["recipe_better"] == 0.0


@pytest.mark.parametrize("scenario", MARGIN, ids=_ids(MARGIN))
def test_at_the_margin_neither_equivalent_nor_better_beyond_it(scenario):
    rates = run_scenario(scenario, NULL_SIMS, seed=2025)
    print(f"{scenario.name}: false equivalent {rates['equivalent']:.3f}, "
          f"false better beyond the margin {rates['a_better']:.3f}")
    assert rates["equivalent"] <= BOUND and rates["a_better"] <= BOUND, rates


def test_every_power_scenario_has_a_reference():
    assert {s.name for s in POWER} == set(BASELINE_POWER) | set(FLOORS)


@pytest.mark.parametrize("scenario", POWER, ids=_ids(POWER))
def test_power_is_not_below_todays(scenario):
    rates = run_scenario(scenario, 500, seed=2026)
    print(f"{scenario.name}: power {rates['a_better']:.3f} (858dedb: {BASELINE_POWER.get(scenario.name)})")
    assert rates["better"] - rates["a_better"] <= ALPHA / 2  # a call in the wrong direction stays rare
    if scenario.name in BASELINE_POWER:
        assert rates["a_better"] >= BASELINE_POWER[scenario.name]
    else:
        assert rates["a_better"] >= FLOORS[scenario.name]


# The planner judged by what its plans deliver (issues 22, 43): pilots drawn from each design under a real effect,
# each planned for 80 % power on `bakeoff plan`'s grid, each proposed design simulated 150 times through the real
# verdict rule. Per design (issue 43 asks for both): the median |predicted - delivered| and the share within
# ±0.10; and the share of delivered powers inside the 10-90 % range the plan states beside its proposal. With
# three pilot seeds the seed-to-seed variance rests on two degrees of freedom: the stated ranges are wide
# (about 0.4-1.0), and a proposal's power lies within ±0.10 of what it says in 60-90 % of the pilots
# (docs/statistics.md, "Planning").
PLAN_PILOTS = 16


@pytest.mark.parametrize("scenario", PLAN_SCENARIOS, ids=_ids(PLAN_SCENARIOS))
def test_the_planner_delivers_the_power_it_predicts(scenario):
    res = plan_calibration(scenario, PLAN_PILOTS, 150, seed=2027)
    print(f"{scenario.name}: {res['planned']}/{res['pilots']} pilots proposed a design; predicted "
          f"{res['mean_predicted']:.3f}, delivered {res['mean_delivered']:.3f} (mean error {res['mean_error']:+.3f}, "
          f"median |error| {res['median_abs_error']:.3f}, within ±0.10: {res['within_010']:.0%}, delivered inside "
          f"the stated range: {res['range_covers']:.0%}); designs {res['designs']}")
    assert res["planned"] >= PLAN_PILOTS // 2
    assert res["median_abs_error"] <= 0.10, res
    assert abs(res["mean_error"]) <= 0.10 and res["mean_delivered"] >= 0.75, res
    assert res["range_covers"] >= 0.6, res  # the 10-90 % range it states: about 0.8 if it is what the pilot knows
    pilot_units = scenario.n
    assert all(r["design"][1] >= pilot_units for r in res["rows"] if r["design"]), res["designs"]


# The sequential procedure (bakeoff run --until-decided): looks after 3..10 seeds, O'Brien–Fleming spending.
SEQ_NULLS = [s for s in SEQUENTIAL_SCENARIOS if s.expect == "null"]
SEQ_POWER = [s for s in SEQUENTIAL_SCENARIOS if s.expect == "power"]


@pytest.mark.parametrize("max_seeds", [10, 15])
@pytest.mark.parametrize("scenario", SEQ_NULLS, ids=_ids(SEQ_NULLS))
def test_the_sequential_procedure_holds_alpha_over_all_its_looks(scenario, max_seeds):
    rates = run_sequential(scenario, 300, max_seeds=max_seeds, seed=1)
    print(f"{scenario.name}, at most {max_seeds} seeds: false better/worse {rates['better']:.3f} over the whole procedure; stopped futile "
          f"{rates['futile']:.2f}, at the budget {rates['budget']:.2f}; mean seeds {rates['mean_seeds']:.2f}")
    assert rates["better"] <= BOUND, rates


@pytest.mark.parametrize("max_seeds, share", [(10, 0.75), (15, 0.70)])
@pytest.mark.parametrize("scenario", SEQ_POWER, ids=_ids(SEQ_POWER))
def test_the_sequential_procedure_needs_fewer_runs_than_the_fixed_design_of_equal_power(scenario, max_seeds, share):
    """The saving grows with the power the budget buys: at most 10 seeds (power about 0.95) this design
    saves 26-29 % against the fixed design of equal power, at most 15 (power about 0.97-0.98) 36-43 %
    (issue 22 asked for 30 %; docs/statistics.md gives the figures for other effects and Pocock spending)."""
    rates = run_sequential(scenario, 200, max_seeds=max_seeds, seed=1)
    fixed = fixed_seeds_for_power(scenario, rates["a_better"], 200, seed=2)
    print(f"{scenario.name}, at most {max_seeds} seeds: power {rates['a_better']:.3f} with {rates['mean_seeds']:.2f} "
          f"seeds on average; the fixed design of equal power needs {fixed} seeds")
    assert rates["better"] - rates["a_better"] <= ALPHA / 2
    assert fixed is not None and rates["mean_seeds"] <= share * fixed, (rates, fixed)
