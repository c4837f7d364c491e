"""Image-file studies through the cache, end to end: a study streamed from the cache gives the numbers of the
same study read into memory (bit for bit on CPU), and a study killed while decoding resumes to the results
of an uninterrupted one, with the cache built once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bakeoff.api import Study
from tests.conftest import computed_columns, write_study
from tests.images.pngs import png_study, write_pngs
from tests.test_resume import _run


def _predictions(out: Path) -> dict[str, dict[str, np.ndarray]]:
    found = {}
    for p in sorted(out.glob("runs/*/*/predictions.npz")):
        with np.load(p) as f:
            found[str(p.relative_to(out))] = {k: f[k] for k in f.files}
    return found


def test_streamed_and_in_memory_studies_are_bit_identical(tmp_path):
    manifest = write_pngs(tmp_path / "d", 96, size=16, signal=True)
    outs = {}
    for in_memory in (True, False):
        raw = png_study(manifest, normalize="dataset", in_memory=in_memory)
        out = tmp_path / f"o{int(in_memory)}"
        report = Study.from_dict(raw).run(out)
        assert (report.results["status"] == "done").all()
        outs[in_memory] = out
        streamed = {json.loads(p.read_text())["training"]["data_streamed"] for p in out.glob("runs/*/*/run.json")}
        assert streamed == {not in_memory}
    a, b = _predictions(outs[True]), _predictions(outs[False])
    assert a.keys() == b.keys() and len(a) == 2
    for key in a:
        for k in a[key]:
            np.testing.assert_array_equal(a[key][k], b[key][k], err_msg=f"{key} {k}")
    ra, rb = (pd.read_csv(o / "results.csv") for o in outs.values())
    pd.testing.assert_frame_equal(computed_columns(ra), computed_columns(rb))
    checks = json.loads((outs[False] / "data_checks.json").read_text())["decoded"]
    assert checks["images"] == 96 and checks["stored"] == "uint8 [3, 16, 16]" and checks["decode_s"] >= 0


def test_killed_while_decoding_then_the_same_command_gives_the_uninterrupted_results(tmp_path):
    manifest = write_pngs(tmp_path / "d", 200, size=12, signal=True)
    raw = png_study(manifest)
    raw["contenders"].pop("b")
    study = write_study(tmp_path / "s.yaml", raw)
    killed = _run(study, tmp_path / "killed", "cache:2")
    assert killed.returncode == -9, killed.stderr[-2000:]  # SIGKILL with the cache half written
    assert not (tmp_path / "killed" / "cache" / "builds.log").exists()
    again = _run(study, tmp_path / "killed")
    assert again.returncode == 0, again.stderr[-3000:]
    clean = _run(study, tmp_path / "clean")
    assert clean.returncode == 0, clean.stderr[-3000:]
    log = (tmp_path / "killed" / "cache" / "builds.log").read_text().splitlines()
    assert len(log) == 1 and not list((tmp_path / "killed" / "cache").glob(".*.partial"))
    a, b = (pd.read_csv(tmp_path / d / "results.csv") for d in ("killed", "clean"))
    pd.testing.assert_frame_equal(computed_columns(a), computed_columns(b))
    pa, pb = _predictions(tmp_path / "killed"), _predictions(tmp_path / "clean")
    for key in pa:
        for k in pa[key]:
            np.testing.assert_array_equal(pa[key][k], pb[key][k])
    # the cache is listed by bakeoff clean and kept (the current data's); --cache deletes it
    proc = subprocess.run([sys.executable, "-m", "bakeoff.cli", "clean", str(tmp_path / "clean"), "--cache"],
                          capture_output=True, text=True, env=dict(os.environ, COLUMNS="200"), timeout=120)
    assert proc.returncode == 0 and "decoded images of the current data" in proc.stdout, proc.stdout
    assert not [p for p in (tmp_path / "clean" / "cache").iterdir() if p.is_dir()]
