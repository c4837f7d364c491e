"""Several runs at once on one machine: a study of small models (the zms2 Simple CNN), one run after
another vs several at once through a local Ray, Ray's start-up included. Prints both wall times and their
ratio.

CPU (2 cores): 4 runs, one after another (torch's default threads) vs ``execution.workers: 2`` (one thread
per run): python benchmarks/bench_workers.py [--epochs 48] [--n 6000]
GPU: 10 runs, one at a time on the GPU vs ``backend: ray`` with ``gpus_per_run: 0.25`` (four runs share
the GPU): python benchmarks/bench_workers.py --gpu [--epochs 30] [--n 20000]
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

STUDY = {
    "name": "bench_workers", "task": "binary_classification",
    "data": {"source": "builtin:spots3d", "params": {"n": 2400, "positive_fraction": 0.3, "snr": 4.0, "seed": 1},
             "split": {"kind": "holdout", "val_fraction": 0.2, "test_fraction": 0.2}},
    "protocol": {"seeds": [0, 1], "epochs": 12, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.003}},
    # the study of small models the issue describes (the 18k-parameter spot CNN): a run leaves cores idle
    "contenders": {"cnn": {"model": "bakeoff:simple_cnn3d"},
                   "cnn_d3": {"model": "bakeoff:simple_cnn3d", "params": {"dropout": 0.3}}},
    "evaluation": {"speed": False, "n_boot": 200},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=48)
    ap.add_argument("--n", type=int, default=6000)
    ap.add_argument("--gpu", action="store_true", help="10 runs on one GPU: one at a time vs 4 sharing it")
    args = ap.parse_args()
    from bakeoff.api import Study

    raw = copy.deepcopy(STUDY)
    raw["protocol"]["epochs"], raw["data"]["params"]["n"] = args.epochs, args.n
    if args.gpu:
        raw["protocol"].update(accelerator="gpu", seeds=[0, 1, 2, 3, 4])
        parallel = {"backend": "ray", "gpus_per_run": 0.25, "cpus_per_run": 1, "threads_per_run": 1}
        label = "backend ray, gpus_per_run 0.25"
    else:
        parallel = {"workers": 2, "threads_per_run": 1}
        label = "workers: 2 (Ray, one thread per run)"
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        seq = Study.from_dict(raw).run(Path(tmp) / "seq")
        t_seq = time.perf_counter() - t0
        raw["execution"] = parallel
        t0 = time.perf_counter()
        par = Study.from_dict(raw).run(Path(tmp) / "par")
        t_par = time.perf_counter() - t0
    runs = seq.results["train_time_s"].tolist()
    print(f"{len(runs)} runs (training {min(runs):.0f}-{max(runs):.0f} s each alone): one after another "
          f"{t_seq:.1f} s; {label} {t_par:.1f} s; ratio {t_par / t_seq:.2f}x "
          f"(all runs done: {(par.results['status'] == 'done').all()})")


if __name__ == "__main__":
    main()
