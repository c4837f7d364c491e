"""Do a seed's runs of two contenders vary together? The evidence behind pooling the seed spread over the
two contenders of a verdict (docs/statistics.md, ``bakeoff.stats.design.run_spread``), measured on real
training: scikit-learn's digits (``examples/digits_timm.yaml``) with mobilenetv3, resnet10t and resnet10t
at half the learning rate, every seed trained for every contender, then per pair:

* the correlation over seeds of the contenders' test QWK and accuracy (a negative one would make the
  pooled variance too small; a positive one makes it err on the safe side);
* the correlation over the test images of a run's residual (its probability of the true class less its
  contender's mean over seeds) between A and B of the same seed, against different seeds: what
  ``runs_vary_together`` tests before it pools;
* what the verdict did: pooled (A's share of the spread) or the paired spread kept.

Run: python benchmarks/bench_seed_coupling.py [--seeds 24] [--epochs 2] [--out DIR]
(24 seeds x 3 contenders took about 4 minutes on 2 cores on 2026-12-03.)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from bakeoff.measure.metrics import load_predictions

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "digits_timm.yaml"


def study_file(folder: Path, seeds: int, epochs: int) -> Path:
    """The digits example with three contenders, two of them one network at two learning rates."""
    csv = ROOT / "examples" / "digits" / "folds.csv"
    if not csv.is_file():
        subprocess.run([sys.executable, str(ROOT / "examples" / "make_digits.py")], check=True)
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["data"]["source"] = f"csv:{csv}"
    raw["protocol"].update({"seeds": list(range(seeds)), "epochs": epochs})
    lr = raw["protocol"]["optimizer"]["lr"]
    raw["contenders"] = {
        "mobilenetv3": {"model": "timm:mobilenetv3_small_050"},
        "resnet10t": {"model": "timm:resnet10t"},
        "resnet10t_half_lr": {"model": "timm:resnet10t",
                              "protocol": {"optimizer": {**raw["protocol"]["optimizer"], "lr": lr / 2}}},
    }
    raw["evaluation"] = {"primary": "qwk", "baseline": "resnet10t", "speed": False}
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def coupling(out: Path) -> list[str]:
    df = pd.read_csv(out / "results.csv")
    df = df[df["status"] == "done"]
    runs = {}
    for _, r in df.iterrows():
        p = load_predictions(out / "runs" / r["contender"] / r["run_id"] / "predictions.npz")["test"]
        order = np.argsort(p["ids"], kind="stable")
        y, probs = np.asarray(p["y"])[order], np.asarray(p["probs"])[order]
        runs[r["contender"], int(r["seed"])] = (r["test_qwk"], r["test_accuracy"], probs[np.arange(len(y)), y])
    pairs = {(p["a"], p["b"]): p for p in json.loads((out / "comparison.json").read_text())["pairs"]}
    names = sorted({c for c, _ in runs})
    seeds = sorted({s for _, s in runs})
    S = len(seeds)
    lines = [f"{'pair':40s} {'r(QWK)':>14s} {'r(accuracy)':>14s} {'same seed':>10s} {'other seeds':>12s}  verdict's spread"]
    for a, b in combinations(names, 2):
        ra = stats.pearsonr([runs[a, s][0] for s in seeds], [runs[b, s][0] for s in seeds])
        rc = stats.pearsonr([runs[a, s][1] for s in seeds], [runs[b, s][1] for s in seeds])
        Ra = np.stack([runs[a, s][2] for s in seeds])
        Rb = np.stack([runs[b, s][2] for s in seeds])
        Ra, Rb = Ra - Ra.mean(0), Rb - Rb.mean(0)
        same = np.mean([np.corrcoef(Ra[i], Rb[i])[0, 1] for i in range(S)])
        other = np.mean([np.corrcoef(Ra[i], Rb[j])[0, 1] for i in range(S) for j in range(S) if i != j])
        pair = pairs.get((a, b)) or pairs.get((b, a))
        spread = "not compared (pairs: baseline)"
        if pair is not None:
            share = pair["design"]["components"]["groups"][0].get("side_share")
            spread = "paired (coupled)" if share is None else f"pooled (A's share {share:.2f}), df {pair['df']:.1f}"
        lines.append(f"{a + ' vs ' + b:40s} {ra.statistic:+6.2f} (p {ra.pvalue:.2f}) {rc.statistic:+6.2f} "
                     f"(p {rc.pvalue:.2f}) {same:+10.3f} {other:+12.3f}  {spread}")
    return lines


def main(seeds: int, epochs: int, out: Path | None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bakeoff-coupling-"))
    out = out or folder / "out"
    path = study_file(folder, seeds, epochs)
    cli = Path(sys.executable).parent / "bakeoff"  # the command a user runs, from this environment
    subprocess.run([str(cli), "run", str(path), "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    print(f"{seeds} seeds x 3 contenders, {epochs} epochs: {out}")
    print("\n".join(coupling(out)))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=24)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    main(args.seeds, args.epochs, args.out)
