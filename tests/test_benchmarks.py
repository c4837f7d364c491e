"""The side-by-side training benchmarks run (tiny, on CPU) and ``make bench``'s table reads what they wrote:
the scripts ``benchmarks/gpu_checks.sh`` runs on a GPU machine must not rot where CI has none."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "bench_train_throughput.py": ["--n", "300", "--epochs", "1", "2", "--repeats", "2"],
    "bench_timm_throughput.py": ["--n", "64", "--size", "32", "--epochs", "1", "2", "--repeats", "2"],
    "bench_seg_throughput.py": ["--patch", "32", "--size", "64", "--iters", "2", "--batch", "2", "--epochs", "1",
                                "2", "--repeats", "2"],
}


@pytest.mark.slow
def test_the_training_benchmarks_pair_runs_and_make_one_table(tmp_path):
    summary = tmp_path / "bench_summary.jsonl"
    env = {**os.environ, "BENCH_SUMMARY": str(summary)}
    for script, args in TINY.items():
        out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args, "--device", "cpu"],
                             env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        assert "paired ratios" in out.stdout and "2 pairs" in out.stdout, out.stdout
    rows = [json.loads(line) for line in summary.read_text().splitlines()]
    assert [r["loop"] for r in rows] == ["bakeoff"] * 3
    for r in rows:
        lo, hi = r["whole_range"]
        assert r["pairs"] == 2 and lo <= r["whole_ratio"] <= hi and r["whole_ratio"] > 0
        assert r["reference"] == "hand-written, fused Adam" and r["workload"]
    table = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_table.py"), str(summary)],
                           capture_output=True, text=True, timeout=60)
    lines = table.stdout.splitlines()
    assert table.returncode == 0 and len(lines) == 5, table.stdout  # header, the three workloads, the footer
    assert all(" bakeoff " in line for line in lines[1:4]) and "paired by repeat" in lines[4], table.stdout
