"""Run every example study at tiny size and keep what a refactor must not change; compare two snapshots.

    python scripts/snapshot_examples.py snap DIR          # run the examples, keep results and verdicts in DIR
    python scripts/snapshot_examples.py compare A B       # every number equal to 1e-12 (timings left out)

CPU runs are bit-identical (protocol.deterministic: auto), so any difference is a change in behaviour.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TINY = ["protocol.epochs=2", "protocol.seeds=[0, 1]", "evaluation.speed=false", "evaluation.n_boot=200"]
EXAMPLES = {
    "spots3d": ["data.params.n=400"],
    "organelles2d": ["protocol.iterations_per_epoch=2"],
    "cryoem_picking": ["protocol.iterations_per_epoch=2"],
    "digits_timm": ["data.image_size=16", "evaluation.gradcam=0"],
    "spots_regression": ["data.params.n=200"],
}
# what varies between identical runs: timings, dates, paths
SKIP_COLUMNS = ("train_time_s", "train_samples_per_s", "peak_memory_mb", "latency_ms", "throughput_per_s",
                "wall_time_s", "batch_latency_ms")


def snap(out: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.images.test_csv_source import make_digits

    from bakeoff.api import Study

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in EXAMPLES.items():
            sets = TINY + extra
            if name == "digits_timm":
                sets.append(f"data.source=csv:{make_digits(Path(tmp) / 'digits')}")
            run_dir = Path(tmp) / name
            Study.from_yaml(ROOT / "examples" / f"{name}.yaml", sets).run(run_dir)
            (out / name).mkdir(exist_ok=True)
            for f in ("results.csv", "comparison.json", "summary.csv", "intervals.csv"):
                if (run_dir / f).exists():
                    shutil.copy(run_dir / f, out / name / f)
            print(f"{name}: kept in {out / name}")


def _diff(a, b, path: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if any(s in k for s in SKIP_COLUMNS):
                continue
            _diff(a.get(k), b.get(k), f"{path}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            _diff(x, y, f"{path}[{i}]", out)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if not (math.isclose(a, b, rel_tol=TOL[0], abs_tol=TOL[0]) or (math.isnan(a) and math.isnan(b))):
            out.append(f"{path}: {a!r} != {b!r}")
    elif a != b:
        out.append(f"{path}: {a!r} != {b!r}")


TOL = [1e-12]


def _read(path: Path) -> pd.DataFrame | None:
    """A CSV, or None when absent or empty (a table a version did not write)."""
    if not path.exists() or path.stat().st_size <= 1:
        return None
    return pd.read_csv(path)


def compare(a: Path, b: Path) -> int:
    problems: list[str] = []
    for name in EXAMPLES:
        missing = [str(p) for p in (a, b) if not (p / name).is_dir()]
        if missing:  # an example added (or dropped) between the two snapshots
            print(f"{name}: not in {', '.join(missing)} (not compared)")
            continue
        for f in ("results.csv", "summary.csv", "intervals.csv"):
            da, db = (_read(p / name / f) for p in (a, b))
            if da is None or db is None:
                if da is not None or db is not None:
                    print(f"{name}/{f}: only in {b if da is None else a} (not compared)")
                continue
            if "metric" in da:  # summary.csv, intervals.csv: rows keyed by contender (seed, fold) and metric
                key = [c for c in ("contender", "seed", "fold", "metric") if c in da]
                da, db = (d[~d["metric"].isin(SKIP_COLUMNS)].sort_values(key).reset_index(drop=True) for d in (da, db))
            keep = [c for c in da.columns if not any(s in c for s in SKIP_COLUMNS)]
            _diff(json.loads(da[keep].to_json()), json.loads(db.reindex(columns=keep).to_json()),
                  f"{name}/{f}", problems)
        _diff(*(json.loads((p / name / "comparison.json").read_text()) for p in (a, b)), f"{name}/comparison", problems)
    for p in problems[:40]:
        print(p)
    print(f"{len(problems)} difference(s) between {a} and {b} (to {TOL[0]:g}; timings left out)")
    return 1 if problems else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("snap").add_argument("out", type=Path)
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    c.add_argument("--tol", type=float, default=1e-12, help="relative and absolute tolerance")
    args = ap.parse_args()
    TOL[0] = getattr(args, "tol", 1e-12)
    if args.cmd == "snap":
        snap(args.out)
    else:
        sys.exit(compare(args.a, args.b))


if __name__ == "__main__":
    main()
