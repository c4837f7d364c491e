"""One table from the side-by-side training benchmarks that ``make bench`` ran: each workload's paired
ratios (the fastest hand loop's time over bakeoff's in the same repeat), median, its distribution-free 95 %
interval and the range over the pairs.

    BENCH_SUMMARY=bench_summary.jsonl python benchmarks/bench_train_throughput.py   # ... then:
    python benchmarks/bench_table.py bench_summary.jsonl

Each row's verdict on the target: "resolved" where both intervals lie at or above it, "median" where both
medians do but an interval reaches below (more pairs, or a quieter machine, would tell), "BELOW" where a
median is under it.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

TARGET = 0.95


def fmt_ratio(row: dict, part: str) -> str:
    """``median [95 % CI] (range)`` of one paired ratio (``part``: whole or marginal) of a ``compare`` row."""
    lo, hi = row.get(f"{part}_ci", (float("nan"),) * 2)
    ci = "[  n/a  ,  n/a  ]" if not math.isfinite(lo) else f"[{lo:.3f}, {hi:.3f}]"
    r = row[f"{part}_range"]
    return f"{row[f'{part}_ratio']:.3f} {ci} ({r[0]:.2f}-{r[1]:.2f})"


def verdict(row: dict) -> str:
    medians = (row["whole_ratio"], row["marginal_ratio"])
    lows = [row.get(f"{p}_ci", (math.nan, math.nan))[0] for p in ("whole", "marginal")]
    if min(medians) < TARGET:
        return "BELOW"
    return "resolved" if all(math.isfinite(lo) and lo >= TARGET for lo in lows) else "median"


def main(path: str) -> int:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    if not rows:
        print(f"{path}: no benchmark rows", file=sys.stderr)
        return 1
    print(f"{'workload':60s} {'loop':10s} {'whole: median [95% CI] (range)':>36s} "
          f"{'marginal: median [95% CI] (range)':>36s} {'pairs':>5s}  target")
    verdicts = []
    for r in rows:
        v = verdict(r)
        if r["loop"] == "bakeoff":
            verdicts.append(v)
        print(f"{r['workload'][:60]:60s} {r['loop'][:10]:10s} {fmt_ratio(r, 'whole'):>36s} "
              f"{fmt_ratio(r, 'marginal'):>36s} {r['pairs']:5d}  {v}")
    summary = ("met by every workload's median" if "BELOW" not in verdicts else "NOT met by every workload's median")
    if verdicts and all(v == "resolved" for v in verdicts):
        summary += ", and by every 95 % interval"
    print(f"ratios: the fastest hand loop's time over the loop's, paired by repeat (target >= {TARGET} for bakeoff: "
          f"{summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "bench_summary.jsonl"))
