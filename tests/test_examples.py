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
    for figure in ("p = 0.0078", "p = 0.1338", "[+0.012, +0.056]", "[-0.004, +0.068]", "about 840 test",
                   "about 2,250 test"):
        assert figure in out, figure
    for figure in ("0.0078", "0.134", "[+0.012, +0.056]", "[−0.004, +0.068]", "~840", "~2,250"):
        assert figure in doc, figure
    assert out.count("verdict with min_effect 0.02: inconclusive") == 2
