"""The calibration table of bakeoff's verdict rule, with more simulated studies than the test suite runs.

Every row simulates studies (binary, ordinal/multi-class, dense; 1-5 seeds; seed variation on and off;
shared, disjoint and fold-correlated folds; 10 and 100 images; at zero and at the margin) and judges each
with the code a real study runs (``compare_*_pair`` then ``adjust_pairs``). Prints the rate of each
verdict with its Monte Carlo standard error; for power rows, beside it the power of an oracle that knows
the variance of the mean difference (a z test), so that the price of estimating it shows. Then the
sequential procedure (``--until-decided``) under the null and under an effect, with the mean seeds used,
and the planner: what the designs it proposes from simulated pilots deliver.
Run: python benchmarks/bench_calibration.py [--sims 4000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bakeoff.stats.calibration import (
    PLAN_SCENARIOS,
    SCENARIOS,
    SEQUENTIAL_SCENARIOS,
    fixed_seeds_for_power,
    plan_calibration,
    run_scenario,
    run_sequential,
)


def main(sims: int = 4000, seed: int = 1) -> None:
    print(f"{'scenario':86s} {'rate':>7s} {'± MC se':>8s}  what   ({sims} studies each; alpha 0.05)")
    for sc in SCENARIOS:
        start = time.perf_counter()
        r = run_scenario(sc, sims, seed=seed)
        took = (time.perf_counter() - start) / sims * 1e3
        rows = {"null": [("false better/worse", r["better"])],
                "weights": [("directional (about the weights)", r["better"]), ("about the recipe", r["recipe_better"])],
                "margin": [("false equivalent", r["equivalent"]), ("false better beyond margin", r["a_better"])],
                "power": [("power (A better)", r["a_better"]), ("oracle power (known variance)", r["oracle_power"])]
                }[sc.expect]
        for what, rate in rows:
            se = np.sqrt(max(rate * (1 - rate), 1e-12) / sims)
            print(f"{sc.name:86s} {rate:7.3f} {se:8.3f}  {what} ({took:.1f} ms/study)", flush=True)
    for sc, max_seeds in [(sc, m) for sc in SEQUENTIAL_SCENARIOS for m in (10, 15)]:
        n = max(100, sims // 10)
        r = run_sequential(sc, n, max_seeds=max_seeds, seed=seed)
        what = "false better/worse" if sc.expect == "null" else "power (A better)"
        rate = r["better"] if sc.expect == "null" else r["a_better"]
        saving = ""
        if sc.expect == "power":
            fixed = fixed_seeds_for_power(sc, rate, n, seed=seed + 1)
            saving = (f"; the fixed design of equal power: {fixed} seeds (saving {1 - r['mean_seeds'] / fixed:.0%})"
                      if fixed else "; no fixed design up to 30 seeds has this power")
        print(f"{sc.name:86s} {rate:7.3f} {np.sqrt(max(rate * (1 - rate), 1e-12) / n):8.3f}  {what}; mean seeds "
              f"{r['mean_seeds']:.2f} of at most {max_seeds} ({n} studies){saving}", flush=True)

    pilots = max(16, sims // 250)
    for sc in PLAN_SCENARIOS:  # the planner: what its proposals deliver (150 simulated studies per design)
        r = plan_calibration(sc, pilots, 150, seed=seed)
        print(f"{sc.name:86s} {r['planned']:3d}/{pilots} pilots proposed; median |predicted - delivered| "
              f"{r['median_abs_error']:.3f}, within ±0.10 {r['within_010']:.0%}, mean error {r['mean_error']:+.3f}, "
              f"delivered inside the stated 10-90 % range {r['range_covers']:.0%}", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    main(args.sims, args.seed)
