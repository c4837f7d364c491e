"""A study's wall time against the training it contains: is evaluation a small fraction of training?

Runs a whole study in this process, as ``bakeoff run`` does after start-up (data, plan, every run's
training, prediction, metrics and timing, then verdicts, tables and plots) and prints the wall time over
the sum of the runs' training times (target <= 1.10), with where the rest went. Two studies:

  * ``demo``: examples/spots3d.yaml (the README's first command), optionally shortened with --set;
  * ``seg3d``: a 3D segmentation study like a user's MRI one: 3D U-Net vs Attention U-Net on 32^3
    volumes with 3 classes (66 training and 80 validation volumes, the validation volumes doubling as the
    test set), HD95 and NSD included, generated into an npz_dir.

    python benchmarks/bench_study_overhead.py demo [--set protocol.epochs=10]
    python benchmarks/bench_study_overhead.py seg3d [--set protocol.epochs=2]

``compare`` times the whole command a user runs, ``bakeoff run`` of the demo study (start-up, data, every
run, report, plots), against the same study written by hand (``handwritten_study.py``: the same data,
split, networks, optimizer, schedule, loss, augmentation and best-epoch selection; no plots or report), each
as its own process, alternating and with the order rotated, and prints the median paired ratio
bakeoff / hand-written with its range (targets: <= 1.10 at 3 epochs, <= 1.03 at 30):

    python benchmarks/bench_study_overhead.py compare --epochs 3 --seeds 2 --pairs 5
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from sidebyside import describe, pick_device

ROOT = Path(__file__).resolve().parents[1]


def write_seg3d(root: Path, n_train: int = 66, n_val: int = 80, size: int = 32, seed: int = 0) -> Path:
    """Volumes with two kinds of blobs (classes 1 and 2) in textured noise, as ROOT/{train,val}/*.npz."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(size)] * 3, indexing="ij"), -1).astype(np.float32)
    for part, n in (("train", n_train), ("val", n_val)):
        (root / part).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            mask = np.zeros((size,) * 3, np.uint8)
            for k in (1, 2):
                for _ in range(rng.integers(1, 4)):
                    c = rng.uniform(5, size - 5, 3)
                    r = rng.uniform(3, 6) if k == 1 else rng.uniform(2, 3.5)
                    mask[((grid - c) ** 2).sum(-1) <= r * r] = k
            image = (mask == 1) * 1.0 + (mask == 2) * 0.6 + rng.normal(0, 0.5, mask.shape)
            np.savez(root / part / f"vol{i:03d}.npz", image=image.astype(np.float32), mask=mask)
    return root


def seg3d_study(folder: Path) -> dict:
    unet = {"channels": [16, 32, 64], "strides": [2, 2]}
    return {
        "name": "seg3d", "task": "semantic_segmentation",
        "data": {"source": f"npz_dir:{folder}", "spatial_dims": 3, "num_classes": 3, "normalize": "zscore",
                 "spacing": [1.0, 1.0, 1.0], "split": {"kind": "predefined"}},
        "protocol": {"seeds": [0], "epochs": 1, "batch_size": 4, "patch_size": [32, 32, 32],
                     "optimizer": {"name": "adam", "lr": 1e-3}, "loss": {"name": "dice_ce"},
                     "select": {"monitor": "val/mean_dice", "mode": "max"}},
        "contenders": {"unet": {"model": "monai:UNet", "params": {**unet, "num_res_units": 1}},
                       "attention_unet": {"model": "monai:AttentionUnet", "params": unet}},
        "evaluation": {"primary": "mean_dice", "baseline": "unet"},
    }


def prepare_demo(tmp: Path, epochs: int, seeds: int) -> tuple[Path, Path]:
    """The demo study at ``epochs`` x ``seeds`` as a study file, and what the hand-written study reads: the
    data's generator parameters and the split's (fold 0) train/val/test indices; it makes the samples itself
    (checked here to be the study's, value for value)."""
    import yaml

    from bakeoff.api import Study
    from bakeoff.tasks import load_study

    raw = yaml.safe_load((ROOT / "examples" / "spots3d.yaml").read_text())
    raw["protocol"].update(epochs=epochs, seeds=list(range(seeds)))
    study = tmp / "study.yaml"
    study.write_text(yaml.safe_dump(raw, sort_keys=False))
    ctx = Study(load_study(study)).context
    split = ctx.splits[0]
    data = tmp / "data.npz"
    np.savez(data, params=json.dumps(raw["data"]["params"]), train=split.train, val=split.val, test=split.test)
    from handwritten_study import load_spots  # the script makes the data itself: check it is bakeoff's

    X, y = load_spots(raw["data"]["params"])
    if not (np.array_equal(X.numpy(), ctx.data.X.astype(np.float32)) and np.array_equal(y.numpy(), ctx.data.y)):
        raise SystemExit("the hand-written study's data differ from the study's: the comparison would be unfair")
    return study, data


def compare(epochs: int, seeds: int, pairs: int) -> None:
    import subprocess
    import sys

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        study, data = prepare_demo(tmp_path, epochs, seeds)
        commands = {
            "bakeoff": lambda r: [sys.executable, "-m", "bakeoff.cli", "run", str(study), "--out", str(tmp_path / f"b{r}")],
            "hand": lambda r: [sys.executable, str(ROOT / "benchmarks" / "handwritten_study.py"), str(data),
                               "--epochs", str(epochs), "--seeds", str(seeds), "--out", str(tmp_path / f"h{r}")],
        }
        times: dict[str, list[float]] = {k: [] for k in commands}
        train: dict[str, list[float]] = {k: [] for k in commands}  # the runs' training (model built to best epoch)
        for r in range(pairs):
            for name in (("bakeoff", "hand") if r % 2 == 0 else ("hand", "bakeoff")):
                t0 = time.perf_counter()
                proc = subprocess.run(commands[name](r), capture_output=True, text=True)
                times[name].append(time.perf_counter() - t0)
                if proc.returncode != 0:
                    raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
                train[name].append(_training_s(tmp_path / f"{name[0]}{r}"))
            print(f"  pair {r + 1}: bakeoff {times['bakeoff'][-1]:.1f} s (training {train['bakeoff'][-1]:.1f} s), "
                  f"hand-written {times['hand'][-1]:.1f} s (training {train['hand'][-1]:.1f} s)", flush=True)
    whole = np.array(times["bakeoff"]) / np.array(times["hand"])
    trained = np.array(train["bakeoff"]) / np.array(train["hand"])
    fixed = {k: np.array(times[k]) - np.array(train[k]) for k in times}
    target = 1.10 if epochs < 10 else 1.03
    print(f"whole demo study, {epochs} epochs x {seeds} seeds x 2 contenders, {describe(pick_device())}")
    print(f"  bakeoff run (median)        {np.median(times['bakeoff']):8.1f} s, outside training "
          f"{np.median(fixed['bakeoff']):5.1f} s [{fixed['bakeoff'].min():.1f}, {fixed['bakeoff'].max():.1f}]")
    print(f"  hand-written study (median) {np.median(times['hand']):8.1f} s, outside training "
          f"{np.median(fixed['hand']):5.1f} s [{fixed['hand'].min():.1f}, {fixed['hand'].max():.1f}]")
    print(f"  training alone: bakeoff / hand-written = {np.median(trained):.3f} [{trained.min():.3f}, "
          f"{trained.max():.3f}] (the machine's run-to-run spread, and any per-step cost)")
    print(f"bakeoff / hand-written = {np.median(whole):.3f} [{whole.min():.3f}, {whole.max():.3f}], "
          f"{len(whole)} pairs (target <= {target:.2f})")


def _training_s(out: Path) -> float:
    """The runs' training time summed: bakeoff's ``run.json`` ``train_time_s`` (epochs with validation),
    the hand-written script's ``train_s`` (model built to the best weights chosen)."""
    infos = list(out.glob("runs/*/*/run.json"))
    if infos:
        return float(sum(json.loads(p.read_text())["train_time_s"] for p in infos))
    return float(sum(sum(v) for v in json.loads((out / "results.json").read_text())["train_s"].values()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study", choices=["demo", "seg3d", "compare"])
    ap.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    ap.add_argument("--epochs", type=int, default=3, help="compare: epochs per run")
    ap.add_argument("--seeds", type=int, default=2, help="compare: seeds per contender")
    ap.add_argument("--pairs", type=int, default=5, help="compare: paired repeats")
    args = ap.parse_args()
    if args.study == "compare":
        compare(args.epochs, args.seeds, args.pairs)
        return
    from bakeoff.api import Study
    from bakeoff.config import load_study

    with tempfile.TemporaryDirectory() as tmp:
        if args.study == "demo":
            cfg = load_study(ROOT / "examples" / "spots3d.yaml", args.overrides)
        else:
            import yaml

            path = Path(tmp) / "seg3d.yaml"
            path.write_text(yaml.safe_dump(seg3d_study(write_seg3d(Path(tmp) / "data"))))
            cfg = load_study(path, args.overrides)
        t0 = time.perf_counter()
        study = Study(cfg)
        t_data = time.perf_counter()
        study.run(Path(tmp) / "out")
        total = time.perf_counter() - t0
        infos = [json.loads(p.read_text()) for p in (Path(tmp) / "out").glob("runs/*/*/run.json")]
    train = sum(i.get("train_time_s", 0.0) for i in infos)
    runs = sum(i.get("wall_time_s", 0.0) for i in infos)
    print(f"study {args.study} {' '.join(args.overrides)}: {len(infos)} runs, {describe(pick_device())}")
    print(f"  training (sum over runs)          {train:8.1f} s")
    print(f"  rest of the runs (predict, metrics, timing) {runs - train:8.1f} s")
    print(f"  data, plan, verdicts, report      {total - runs:8.1f} s   (data and plan {t_data - t0:.1f} s)")
    print(f"  study wall time                   {total:8.1f} s")
    print(f"study wall time / training time = {total / train:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
