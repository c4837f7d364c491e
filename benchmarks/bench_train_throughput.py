"""Training throughput of the 3D spot CNN: a bakeoff run vs hand-written PyTorch loops, side by side.

Same network, data ((9, 11, 11) spot patches), optimizer (Adam 1e-3), batch 32 and epochs, on CUDA when
present (else CPU). Every loop trains over shuffled batches and scores the validation set each epoch.
bakeoff also writes its CSV/TensorBoard logs and the selected checkpoint, and computes its full
validation metric set, as in a study run. The reference is the fastest hand-written loop (tensors on the
device once, a shuffled index slicing them, fused Adam, validation AUROC every epoch with the best weights
kept); ``--all`` adds the usual script (DataLoader over a TensorDataset, each batch copied to the device),
PyTorch's default Adam, and bakeoff without its determinism policy. Prints the paired whole-run and
marginal-epoch ratios: median, 95 % interval and range over 25 pairs (target >= 0.95).

    python benchmarks/bench_train_throughput.py [--model simple_cnn3d] [--epochs 2 6] [--repeats 25] [--all]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sidebyside import compare, describe, fast_adam, keep_best, pick_device, plain_torch, save_best, sync
from torch.utils.data import DataLoader, TensorDataset

from bakeoff.config import ProtocolConfig
from bakeoff.data.spots3d import make_spots3d
from bakeoff.data.transforms import normalize
from bakeoff.models import create_model
from bakeoff.tasks import get_task
from bakeoff.train.fit import fit, seed_everything

SHAPE = dict(in_channels=1, num_outputs=1, spatial_dims=3, input_shape=(9, 11, 11))


@plain_torch()
def hand_written(Xt, yt, Xv, yv, epochs, batch, seed, device, model_name, params, dataloader=False,
                 fused=True) -> float:
    seed_everything(max(seed, 0))
    model = create_model(model_name, **SHAPE, params=params)
    t0 = time.perf_counter()
    model.to(device)
    opt = fast_adam(model.parameters()) if fused else torch.optim.Adam(model.parameters(), lr=1e-3)
    best: dict = {}
    Xt_t, yt_t = torch.from_numpy(Xt), torch.from_numpy(yt.astype(np.float32))
    if dataloader:
        loader = DataLoader(TensorDataset(Xt_t, yt_t), batch_size=batch, shuffle=True,
                            pin_memory=device.type == "cuda")
    else:
        Xt_t, yt_t = Xt_t.to(device), yt_t.to(device)
    Xv_t = torch.from_numpy(Xv).to(device)
    for _ in range(epochs):
        model.train()
        if dataloader:
            batches = ((x.to(device, non_blocking=True), y.to(device, non_blocking=True)) for x, y in loader)
        else:
            perm = torch.randperm(len(Xt_t), device=device)
            batches = ((Xt_t[perm[i:i + batch]], yt_t[perm[i:i + batch]]) for i in range(0, len(perm), batch))
        for xb, yb in batches:
            opt.zero_grad(set_to_none=True)
            loss = F.binary_cross_entropy_with_logits(model(xb)[:, 0], yb)
            loss.backward()
            opt.step()
        model.eval()
        with torch.inference_mode():
            probs = torch.sigmoid(torch.cat([model(Xv_t[i:i + 256])[:, 0] for i in range(0, len(Xv_t), 256)]))
        keep_best(model, get_task("binary_classification").metrics(yv, probs.cpu().numpy())["auroc"], best)
    save_best(best)
    sync(device)
    return time.perf_counter() - t0


def with_bakeoff(Xt, yt, Xv, yv, epochs, batch, seed, device, model_name, params, deterministic="auto") -> float:
    protocol = ProtocolConfig(epochs=epochs, batch_size=batch, optimizer={"name": "adam", "lr": 1e-3},
                              deterministic=deterministic, accelerator="gpu" if device.type == "cuda" else "cpu")
    seed_everything(max(seed, 0))
    model = create_model(model_name, **SHAPE, params=params)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        fit(get_task("binary_classification"), model, protocol, Xt, yt, Xv, yv, run_dir=Path(tmp))
        sync(device)
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, nargs=2, default=[2, 6])
    ap.add_argument("--repeats", type=int, default=25)
    ap.add_argument("--all", action="store_true", help="also the DataLoader and default-Adam loops, and bakeoff "
                    "without its determinism policy")
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--model", default="simple_cnn3d")
    ap.add_argument("--base-channels", type=int, default=None, help="for se_resnet")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = pick_device(args.device)
    params = {"base_channels": args.base_channels} if args.base_channels else None
    d = make_spots3d(n=args.n, seed=0)
    X = normalize(d["X"][:, None], "minmax")
    n_train = int(0.8 * len(X))
    a = (X[:n_train], d["y"][:n_train], X[n_train:], d["y"][n_train:])
    k = dict(batch=args.batch, device=device, model_name=args.model, params=params)
    loops = {"hand-written, fused Adam": lambda e, r: hand_written(*a, e, seed=r, **k),
             "bakeoff": lambda e, r: with_bakeoff(*a, e, seed=r, **k)}
    if args.all:
        loops.update({
            "hand-written, default Adam": lambda e, r: hand_written(*a, e, seed=r, fused=False, **k),
            "hand-written, DataLoader": lambda e, r: hand_written(*a, e, seed=r, dataloader=True, **k),
            "bakeoff (deterministic: false)": lambda e, r: with_bakeoff(*a, e, seed=r, deterministic=False, **k)})
    title = (f"{args.model}{' ' + str(params) if params else ''}, batch {args.batch}, {n_train} train / "
          f"{len(X) - n_train} val patches, {describe(device)}")
    compare(loops, "hand-written, fused Adam", tuple(args.epochs), args.repeats, n_train, "samples",
            title)


if __name__ == "__main__":
    main()
