"""The worked example in docs/published_scenario.md reproduces its figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_published_scenario_figures():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "published_scenario.py")], capture_output=True,
                         text=True, check=True).stdout
    doc = (ROOT / "docs" / "published_scenario.md").read_text()
    for figure in ("p = 0.0078", "p = 0.1338", "[+0.010, +0.054]", "[-0.005, +0.069]", "about 1,990 test",
                   "more than 5,000 test"):
        assert figure in out, figure
    for figure in ("0.0078", "0.134", "[+0.010, +0.054]", "[−0.005, +0.069]", "~1,990", "> 5,000"):
        assert figure in doc, figure
    assert out.count("verdict with min_effect 0.02: inconclusive") == 2
