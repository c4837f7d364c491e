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


@pytest.mark.slow
def test_packing_fuses_seeds_that_train_as_they_would_alone():
    """bench_packing.py (run by gpu_checks.sh): K seeds fused by vmap, each with its own initialisation and data
    order, end where the same K runs trained one after another end (dropout 0: float rounding only)."""
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_packing.py"), "--cpu", "--seeds", "3",
                          "--epochs", "2", "--n", "256", "--pairs", "2", "--dropout", "0"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    line = next(x for x in out.stdout.splitlines() if x.strip().startswith("fused:"))
    assert "2 pairs" in line
    drift = float(line.rsplit("runs alone ", 1)[1].split()[0])
    assert drift < 1e-4, line


def test_the_hand_written_whole_study_makes_the_studys_own_data(tmp_path, monkeypatch):
    """``bench_study_overhead.py compare`` holds bakeoff to a script that makes the demo's data itself; the
    arrays it makes are the study's, value for value, or the benchmark refuses to run."""
    import numpy as np

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_study_overhead

    study, data = bench_study_overhead.prepare_demo(tmp_path, epochs=1, seeds=1)
    with np.load(data) as f:
        assert "X" not in f and {"params", "train", "val", "test"} <= set(f.files)
        assert len(np.intersect1d(f["train"], f["test"])) == 0
    import handwritten_study

    real = handwritten_study.load_spots
    monkeypatch.setattr(handwritten_study, "load_spots", lambda p: real({**p, "snr": p["snr"] + 1}))
    (tmp_path / "other").mkdir()
    with pytest.raises(SystemExit, match="differ from the study's"):
        bench_study_overhead.prepare_demo(tmp_path / "other", epochs=1, seeds=1)


def test_the_median_ratios_interval_is_the_order_statistics_one(monkeypatch):
    """``median_ci`` (the interval every side-by-side benchmark prints) is the distribution-free interval of a
    median: the k-th smallest and k-th largest of n ratios, k from the Binomial(n, 1/2) tails (computed here
    from scipy's binomial distribution), and it covers the true median at least 95 % of the time for the
    lopsided scatter of timings (simulated)."""
    import numpy as np
    from scipy.stats import binom

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from sidebyside import median_ci

    rng = np.random.default_rng(0)
    for n in range(6, 31):
        x = rng.lognormal(0, 0.1, n)
        k = max(j for j in range(1, n // 2 + 1) if binom.cdf(j - 1, n, 0.5) <= 0.025)
        s = np.sort(x)
        assert median_ci(x) == (s[k - 1], s[n - k]), n
    assert all(np.isnan(median_ci(rng.random(5))))  # too few pairs for a 95 % interval
    assert median_ci(np.array([1.0, np.nan, 2, 3, 4, 5, 6, 7, 8, 9]))[0] == 2.0  # a NaN ratio is left out
    lopsided = [1 + rng.exponential(0.05, 15) - 0.05 * np.log(2) for _ in range(2000)]  # median 1, long right tail
    cover = [lo <= 1.0 <= hi for lo, hi in map(median_ci, lopsided)]
    assert np.mean(cover) >= 0.95


def test_the_table_says_whether_the_interval_resolves_the_target(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from bench_table import verdict

    row = {"whole_ratio": 0.97, "marginal_ratio": 0.96, "whole_ci": (0.955, 0.99), "marginal_ci": (0.951, 0.98)}
    assert verdict(row) == "resolved"
    assert verdict({**row, "marginal_ci": (0.93, 0.99)}) == "median"
    assert verdict({**row, "whole_ci": (float("nan"), float("nan"))}) == "median"  # under 6 pairs: no interval
    assert verdict({**row, "marginal_ratio": 0.949}) == "BELOW"


@pytest.mark.slow
def test_the_data_scale_and_cache_format_benchmarks_run_at_a_tiny_size(tmp_path):
    """bench_data_scale (check, run, report, reopen and the three paths' epoch ratios) and bench_cache_formats
    run end to end on a few small images: what `make bench` runs at 1,200 / 20,000 384-px images."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_data_scale.py"), "--n", "48", "--size", "32",
                          "--pairs", "1", "--workdir", str(tmp_path / "scale"), "--json", str(tmp_path / "s.json")],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    row = json.loads((tmp_path / "s.json").read_text())[0]
    assert row["check"]["rc"] == 0 and row["run"]["rc"] == 0 and row["report"]["rc"] == 0
    assert row["streamed"] == [False] and row["decoded"]["images"] == 48
    assert set(row["epochs"]["median_s"]) == {"float32", "uint8", "streamed"}
    formats = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_cache_formats.py"), "--n", "40",
                              "--workdir", str(tmp_path / "formats")], capture_output=True, text=True, timeout=300)
    assert formats.returncode == 0, formats.stderr[-3000:]
    assert "npy+pread" in formats.stdout and "npy+memmap" in formats.stdout
