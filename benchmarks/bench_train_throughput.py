"""Training throughput: a bakeoff run vs hand-written PyTorch loops, side by side in one process.

Same model, data ((9, 11, 11) spot patches), optimizer (Adam 1e-3), batch 32, epochs, CPU. Every loop
does what a real one does each epoch: train over shuffled batches, then score the validation set.
bakeoff additionally writes its CSV/TensorBoard logs and the best checkpoint, as in a study run.
Two hand-written baselines: the usual script (DataLoader over a TensorDataset) and the fastest one
(shuffled index tensor, slicing preloaded tensors). Prints samples/s and the ratios (target >= 0.95).

    python benchmarks/bench_train_throughput.py [--model simple_cnn3d] [--epochs 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from bakeoff.config import ProtocolConfig
from bakeoff.data.spots3d import make_spots3d
from bakeoff.data.transforms import normalize
from bakeoff.models import create_model
from bakeoff.tasks import get_task
from bakeoff.train.fit import fit, seed_everything

SHAPE = dict(in_channels=1, num_outputs=1, spatial_dims=3, input_shape=(9, 11, 11))


def _batches_sliced(Xt_t, yt_t, batch):
    perm = torch.randperm(len(Xt_t))
    for i in range(0, len(perm), batch):
        idx = perm[i:i + batch]
        yield Xt_t[idx], yt_t[idx]


def hand_written(Xt, yt, Xv, yv, epochs: int, batch: int, seed: int, model_name: str = "simple_cnn3d",
                 params: dict | None = None, dataloader: bool = False) -> float:
    seed_everything(seed)
    model = create_model(model_name, **SHAPE, params=params)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    Xt_t, yt_t, Xv_t = map(torch.from_numpy, (Xt, yt.astype(np.float32), Xv))
    loader = DataLoader(TensorDataset(Xt_t, yt_t), batch_size=batch, shuffle=True) if dataloader else None
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for xb, yb in (loader if dataloader else _batches_sliced(Xt_t, yt_t, batch)):
            opt.zero_grad(set_to_none=True)
            loss = F.binary_cross_entropy_with_logits(model(xb)[:, 0], yb)
            loss.backward()
            opt.step()
        model.eval()
        with torch.inference_mode():
            probs = torch.sigmoid(torch.cat([model(Xv_t[i:i + 256])[:, 0] for i in range(0, len(Xv_t), 256)]))
        _ = get_task("binary_classification").metrics(yv, probs.numpy())["auroc"]
    return time.perf_counter() - t0


class _PlainModule(L.LightningModule):
    """The smallest LightningModule: what Lightning itself costs, before anything bakeoff adds."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.binary_cross_entropy_with_logits(self.model(x)[:, 0], y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=1e-3)


def lightning_barebones(Xt, yt, Xv, yv, epochs: int, batch: int, seed: int, model_name: str = "simple_cnn3d",
                        params: dict | None = None) -> float:
    """Lightning with ``barebones=True`` and no validation: the floor of any Lightning-based loop."""
    seed_everything(seed)
    module = _PlainModule(create_model(model_name, **SHAPE, params=params))
    loader = DataLoader(TensorDataset(torch.from_numpy(Xt), torch.from_numpy(yt.astype(np.float32))),
                        batch_size=batch, shuffle=True)
    trainer = L.Trainer(max_epochs=epochs, barebones=True, num_sanity_val_steps=0)
    t0 = time.perf_counter()
    trainer.fit(module, loader)
    return time.perf_counter() - t0


def with_bakeoff(Xt, yt, Xv, yv, epochs: int, batch: int, seed: int, model_name: str = "simple_cnn3d",
                 params: dict | None = None) -> float:
    protocol = ProtocolConfig(epochs=epochs, batch_size=batch, optimizer={"name": "adam", "lr": 1e-3},
                              deterministic=False)
    seed_everything(seed)
    model = create_model(model_name, **SHAPE, params=params)
    with tempfile.TemporaryDirectory() as tmp:
        result = fit(get_task("binary_classification"), model, protocol, Xt, yt, Xv, yv, run_dir=Path(tmp))
    return result.train_time_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--model", default="simple_cnn3d")
    ap.add_argument("--base-channels", type=int, default=None, help="for se_resnet")
    args = ap.parse_args()
    params = {"base_channels": args.base_channels} if args.base_channels else None
    m = dict(model_name=args.model, params=params)
    torch.set_num_threads(torch.get_num_threads())
    d = make_spots3d(n=args.n, seed=0)
    X = normalize(d["X"][:, None], "minmax")
    n_train = int(0.8 * len(X))
    Xt, yt, Xv, yv = X[:n_train], d["y"][:n_train], X[n_train:], d["y"][n_train:]
    with_bakeoff(Xt[:256], yt[:256], Xv[:64], yv[:64], 1, args.batch, 0)  # warm-up (imports, allocator)
    times: dict[str, list[float]] = {"hand-written, DataLoader": [], "hand-written, sliced tensors": [],
                                     "Lightning barebones, no val": [], "bakeoff (Lightning)": []}
    for r in range(args.repeats):  # interleaved so that machine drift hits all alike
        times["hand-written, DataLoader"].append(
            hand_written(Xt, yt, Xv, yv, args.epochs, args.batch, r, dataloader=True, **m))
        times["hand-written, sliced tensors"].append(hand_written(Xt, yt, Xv, yv, args.epochs, args.batch, r, **m))
        times["Lightning barebones, no val"].append(lightning_barebones(Xt, yt, Xv, yv, args.epochs, args.batch, r, **m))
        times["bakeoff (Lightning)"].append(with_bakeoff(Xt, yt, Xv, yv, args.epochs, args.batch, r, **m))
    samples = args.epochs * len(Xt)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{args.model}{' ' + str(params) if params else ''}, batch {args.batch}, {len(Xt)} train / {len(Xv)} val "
          f"patches, {args.epochs} epochs, {torch.get_num_threads()} threads, median of {args.repeats}")
    for k, v in times.items():
        print(f"  {k:30s} {med[k]:7.2f} s {samples / med[k]:9.0f} train samples/s   runs: {[round(x, 2) for x in v]}")
    ours = med["bakeoff (Lightning)"]
    for k in list(times)[:3]:
        print(f"throughput ratio bakeoff / {k}: {med[k] / ours:.3f}  (target >= 0.95)")


if __name__ == "__main__":
    main()
