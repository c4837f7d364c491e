"""`bakeoff run --until-decided` end to end (issue 22): seeds are added one per contender per round only
while a pair is undecided and can still be decided; the looks, the nominal levels and why the study stopped
are kept in sequential.json, stated in comparison.json and the methods paragraph; the verdicts are those of
the last look; a rerun resumes without training anything."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import TINY_STUDY, write_study


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "bakeoff.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=1200, env={**__import__("os").environ, "COLUMNS": "200"})


def test_until_decided_stops_when_decided_or_futile_without_a_directional_verdict_for_twins(tmp_path):
    raw = json.loads(json.dumps(TINY_STUDY))
    raw["protocol"].update(seeds=[0], epochs=5)
    raw["data"]["params"]["n"] = 300
    raw["contenders"] = {"cnn": {"model": "bakeoff:simple_cnn3d"},
                         "twin": {"model": "bakeoff:simple_cnn3d"},  # an A/A pair: the same recipe twice
                         "crippled": {"model": "bakeoff:simple_cnn3d", "params": {"hidden": 1},
                                      "protocol": {"optimizer": {"lr": 1e-6}}}}
    raw["evaluation"].update(speed=False, n_boot=200, baseline="cnn", gradcam=0)
    study, out = write_study(tmp_path / "s.yaml", raw), tmp_path / "out"
    proc = _cli("run", study, "--out", out, "--until-decided", "--max-seeds", "5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "sequential.json").read_text())
    looks = record["looks"]
    assert looks[0]["seeds"] == 3 and record["max_seeds"] == 5 and record["spending"] == "obrien_fleming"
    assert [lk["seeds"] for lk in looks] == list(range(3, 3 + len(looks)))
    assert all(lk["stop"] is None for lk in looks[:-1]) and looks[-1]["stop"] in ("decided", "futile", "budget")
    assert len(looks) >= 2  # (on this data the crippled pair is undecided at 3 seeds: seeds were added)
    assert all(0 < lk["nominal_alpha"] < 0.05 for lk in looks)
    seeds = len(looks) + 2
    runs = {p.parent.name for p in (out / "runs").glob("*/*/run.json")}
    assert runs == {f"seed{s}-fold0" for s in range(seeds)}  # the same seeds for every contender, none beyond
    comp = json.loads((out / "comparison.json").read_text())
    pairs = {p["a"]: p for p in comp["pairs"]}
    assert "better" not in pairs["twin"]["verdict"]  # A/A: never directional
    assert pairs["crippled"]["verdict"].startswith("cnn better") or looks[-1]["stop"] != "decided"
    assert comp["sequential"]["looks"][-1]["nominal_alpha"] == pairs["twin"]["sequential_alpha"]
    assert "Sequential design" in comp["sequential"]["text"]
    flat = " ".join(proc.stdout.split())
    assert "look 1 after 3 seeds" in flat and "Sequential design" in flat
    import re

    counts = [(int(k), int(n)) for k, n in re.findall(r"\((\d+)/(\d+) runs", proc.stdout)]
    assert counts and all(k <= n for k, n in counts), counts  # each round counted afresh
    assert "Jennison" in (out / "methods.txt").read_text() or "jennison2000" in (out / "methods.txt").read_text()
    # a rerun looks again at the same runs and ends the same way, training nothing
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/*/predictions.npz")}
    again = _cli("run", study, "--out", out, "--until-decided", "--max-seeds", "5")
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    assert json.loads((out / "sequential.json").read_text())["looks"][-1] == looks[-1]
