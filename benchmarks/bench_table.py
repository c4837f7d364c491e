"""One table from the side-by-side training benchmarks that ``make bench`` ran: each workload's paired
ratios (the fastest hand loop's time over bakeoff's in the same repeat), median and range over the pairs.

    BENCH_SUMMARY=bench_summary.jsonl python benchmarks/bench_train_throughput.py   # ... then:
    python benchmarks/bench_table.py bench_summary.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TARGET = 0.95


def main(path: str) -> int:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    if not rows:
        print(f"{path}: no benchmark rows", file=sys.stderr)
        return 1
    print(f"{'workload':72s} {'loop':32s} {'whole [range]':>22s} {'marginal [range]':>22s} {'pairs':>5s}")
    short = True
    for r in rows:
        w, m = r["whole_range"], r["marginal_range"]
        ok = min(r["whole_ratio"], r["marginal_ratio"]) >= TARGET
        short &= ok if r["loop"] == "bakeoff" else True
        print(f"{r['workload'][:72]:72s} {r['loop'][:32]:32s} {r['whole_ratio']:6.3f} [{w[0]:.2f}, {w[1]:.2f}]"
              f"   {r['marginal_ratio']:6.3f} [{m[0]:.2f}, {m[1]:.2f}] {r['pairs']:5d}{'' if ok else '  < target'}")
    print(f"ratios: the fastest hand loop's time over the loop's, paired by repeat (target >= {TARGET} for bakeoff: "
          f"{'met' if short else 'NOT met'} by every workload's median)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "bench_summary.jsonl"))
