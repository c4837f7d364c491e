"""Data of any size: peak memory, decode and epoch times of image-file studies as the data grow.

For each N it writes N synthetic 384 x 384 RGB PNGs with a fold CSV (path,label,fold,split: 20 % test,
the rest in 5 folds; fold 0 validates), then measures, each in a fresh process:
  * ``bakeoff check`` (headers and a sample): peak RSS and wall time;
  * ``bakeoff run`` of a one-epoch, two-contender study (timm's test_vit at lr 1e-3 and 3e-3, batch 32):
    peak RSS, wall time, the first decode's time (the cache build) and whether batches were streamed;
  * reopening the cache in a new process (what every later run, Ray worker or SLURM job does): time to
    open it and to read one batch;
and, at the smallest N, the training epoch time of the three ways batches can reach the network, as paired
ratios (alternating runs) with a distribution-free 95 % interval of the median (``sidebyside.median_ci``):
``float32``: the path before the cache (the whole dataset normalised to float32 in memory), ``uint8``: the
decoded uint8 pixels in memory, normalised per batch (what small data take now), ``streamed``: read by
batch from the on-disk cache by a prefetch thread (what large data take). Ratio = float32 time / the
other's: >= 0.95 means at most ~5 % slower.

    python benchmarks/bench_data_scale.py [--n 1200 20000] [--pairs 6] [--workdir /tmp/bakeoff-scale]

The PNGs are kept in --workdir between calls (writing 20,000 takes minutes); the study outputs are not.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sidebyside import median_ci  # noqa: E402

RSS = """
import json, resource, subprocess, sys, time
t = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"rc": proc.returncode, "wall_s": time.perf_counter() - t,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                  "tail": (proc.stdout + proc.stderr)[-1500:]}))
"""


def _png(args: tuple[Path, int, int]) -> None:
    path, i, size = args
    from PIL import Image

    rng = np.random.default_rng(i)
    base = rng.integers(0, 200, (24, 24, 3), dtype=np.uint8)  # smooth colour fields with fine noise
    img = np.asarray(Image.fromarray(base).resize((size, size), Image.BILINEAR), dtype=np.int16)
    img = img + rng.integers(-12, 13, img.shape)
    if i % 2:
        img[size // 3:size // 2, size // 3:size // 2] += 40  # class 1: a brighter square
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, compress_level=1)


def make_data(root: Path, n: int, size: int) -> Path:
    manifest = root / "folds.csv"
    if manifest.is_file() and sum(1 for _ in open(manifest)) == n + 1:
        return manifest
    (root / "images").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with Pool(os.cpu_count() or 1) as pool:
        pool.map(_png, [(root / "images" / f"{i:06d}.png", i, size) for i in range(n)], chunksize=64)
    rng = np.random.default_rng(0)
    test = rng.random(n) < 0.2
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "fold", "split"])
        for i in range(n):
            w.writerow([f"images/{i:06d}.png", i % 2, -1 if test[i] else i % 5, "test" if test[i] else "train"])
    print(f"  wrote {n:,} PNGs ({_du(root / 'images') / 1e9:.2f} GB) in {time.perf_counter() - t0:.0f} s", flush=True)
    return manifest


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def study(manifest: Path, path: Path, size: int) -> Path:
    import yaml

    vit = {"model": "timm:test_vit", "params": {"img_size": size}}
    raw = {"name": "scale", "task": "binary_classification",
           "data": {"source": f"csv:{manifest}", "normalize": "imagenet",
                    "split": {"kind": "column", "column": "fold", "val_fold": 0}},
           "protocol": {"seeds": [0], "epochs": 1, "batch_size": 32, "optimizer": {"name": "adam", "lr": 1e-3},
                        "select": {"monitor": "val/auroc", "mode": "max"}},
           "contenders": {"vit_lr1e-3": vit, "vit_lr3e-3": {**vit, "protocol": {"optimizer": {"lr": 3e-3}}}},
           "evaluation": {"primary": "auroc", "baseline": "vit_lr1e-3", "speed": False, "n_boot": 200}}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def measured(*cmd: str) -> dict:
    out = subprocess.run([sys.executable, "-c", RSS, *cmd], capture_output=True, text=True)
    return json.loads(out.stdout)


def reopen(manifest: Path, cache: Path) -> dict:
    code = f"""
import json, time
t = time.perf_counter()
from pathlib import Path
from bakeoff.data.sources import load_source
data = load_source("csv:{manifest}")
t_load = time.perf_counter() - t
data.X.store.root = Path("{cache}")
t = time.perf_counter(); data.X.store.ensure(); t_open = time.perf_counter() - t
import numpy as np
pick = np.random.default_rng(0).choice(len(data.ids), min(32, len(data.ids)), replace=False)
t = time.perf_counter(); data.X[pick].raw(); t_batch = time.perf_counter() - t
print(json.dumps({{"load_s": t_load, "open_s": t_open, "batch_s": t_batch}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr[-2000:])
    return json.loads(proc.stdout)


def epoch_ratios(manifest: Path, cache: Path, pairs: int, size: int) -> dict:
    """Training epoch times of the three paths, alternating, in this process (one model, one protocol)."""
    import torch

    from bakeoff.config import ProtocolConfig
    from bakeoff.data.sources import load_source
    from bakeoff.models import create_model
    from bakeoff.tasks import get_task
    from bakeoff.train.fit import fit, seed_everything

    data = load_source(f"csv:{manifest}")
    data.X.store.root = cache
    data.X.method = "imagenet"
    fold = data.meta["column:fold"]
    tr, va = np.flatnonzero((fold != "0") & (fold != "-1")), np.flatnonzero(fold == "0")
    task = get_task("binary_classification", 2)
    protocol = ProtocolConfig(epochs=1, batch_size=32, select={"monitor": "val/auroc", "mode": "max"})
    X32 = np.asarray(data.X)  # the path before the cache: everything normalised to float32 in memory
    ways = {"float32": lambda: (X32[tr], X32[va]), "uint8": lambda: (data.X[tr], data.X[va]),
            "streamed": lambda: (data.X[tr], data.X[va])}
    times: dict[str, list[float]] = {k: [] for k in ways}
    for r in range(pairs + 1):  # the first round warms up and is dropped
        for name in (ways if r % 2 == 0 else reversed(list(ways))):
            data.X.store.in_memory = name != "streamed"
            xt, xv = ways[name]()
            seed_everything(0)
            model = create_model("timm:test_vit", in_channels=3, num_outputs=1, spatial_dims=2,
                                 input_shape=(size, size), params={"img_size": size})
            result = fit(task, model, protocol, xt, data.y[tr], xv, data.y[va], run_dir=None)
            if r:
                times[name].append(result.train_time_s)
    out = {"threads": torch.get_num_threads(), "pairs": pairs,
           "median_s": {k: float(np.median(v)) for k, v in times.items()}}
    for k in ("uint8", "streamed"):
        ratio = np.asarray(times["float32"]) / np.asarray(times[k])
        lo, hi = median_ci(ratio)
        out[f"float32/{k}"] = {"median": float(np.median(ratio)), "ci95": [lo, hi],
                               "range": [float(ratio.min()), float(ratio.max())]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[1200, 20000])
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bakeoff-scale"))
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    rows = []
    for n in args.n:
        root = args.workdir / f"n{n}_{args.size}"
        print(f"N = {n:,} ({n * 3 * args.size ** 2 / 1e9:.2f} GB as uint8, {n * 12 * args.size ** 2 / 1e9:.1f} GB "
              f"as float32)", flush=True)
        manifest = make_data(root, n, args.size)
        out = root / "out"
        shutil.rmtree(out, ignore_errors=True)
        s = study(manifest, root / "study.yaml", args.size)
        check = measured("bakeoff", "check", str(s), "--out", str(out))
        print(f"  check: rc {check['rc']}, peak RSS {check['peak_rss_mb']:,.0f} MB, {check['wall_s']:.1f} s", flush=True)
        run = measured("bakeoff", "run", str(s), "--out", str(out))
        decoded = json.loads((out / "data_checks.json").read_text()).get("decoded", {}) if run["rc"] == 0 else {}
        streamed = sorted({json.loads(p.read_text()).get("training", {}).get("data_streamed")
                           for p in out.glob("runs/*/*/run.json")}, key=str)
        print(f"  run (1 epoch, 2 contenders): rc {run['rc']}, peak RSS {run['peak_rss_mb']:,.0f} MB, "
              f"{run['wall_s']:.0f} s; first decode {decoded.get('decode_s', float('nan')):.1f} s; streamed: "
              f"{streamed}", flush=True)
        if run["rc"] != 0:
            print(run["tail"])
        report = measured("bakeoff", "report", str(out))
        print(f"  report: rc {report['rc']}, peak RSS {report['peak_rss_mb']:,.0f} MB, {report['wall_s']:.1f} s")
        again = reopen(manifest, out / "cache")
        print(f"  reopen in a new process: manifest + headers {again['load_s']:.1f} s, cache open "
              f"{again['open_s'] * 1000:.0f} ms, one batch of 32 {again['batch_s'] * 1000:.0f} ms", flush=True)
        row = {"n": n, "size": args.size, "check": check, "run": run, "report": report, "decoded": decoded,
               "streamed": streamed, "reopen": again}
        for r in (check, run, report):
            r.pop("tail", None)
        if n == min(args.n):
            ep = epoch_ratios(manifest, root / "cache", args.pairs, args.size)
            row["epochs"] = ep
            print(f"  epoch time over {ep['pairs']} alternating rounds ({ep['threads']} threads), median s: "
                  + ", ".join(f"{k} {v:.1f}" for k, v in ep["median_s"].items()))
            for k in ("uint8", "streamed"):
                r = ep[f"float32/{k}"]
                print(f"  ratio float32 / {k}: {r['median']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] "
                      f"(range {r['range'][0]:.3f}-{r['range'][1]:.3f}; goal >= 0.95)", flush=True)
        rows.append(row)
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(root / "cache", ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
