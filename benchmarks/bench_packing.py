"""Packing small runs onto one device: K seeds of the zms2 Simple CNN (17,957 parameters) trained one after
another, against the same K runs fused into one model with ``torch.func`` (``stack_module_state`` +
``vmap``: one batched step for all K, each seed with its own initialisation and data order) and, on CUDA,
against each run captured as a CUDA graph (``torch.compile(mode="reduce-overhead")``).

A tiny network leaves a GPU idle between kernel launches; fusing K runs makes each launch K times larger, a
CUDA graph removes the launches' Python and driver cost. On a 2-core CPU neither is expected to pay (issue
27 measured 0.72x for vmap). Training steps only (no validation), Adam (fused where the device has it),
batch 32. Prints per-pair ratios (alternating order) with the median and range, and how far the fused
runs' final weights are from the runs trained alone (dropout 0: they should agree to float rounding; with
dropout the fused runs draw other masks, so they are equivalent in distribution, not in their numbers):

    python benchmarks/bench_packing.py [--seeds 5] [--epochs 3] [--n 3200] [--pairs 3] [--dropout 0.5]
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
from sidebyside import describe, pick_device, sync

from bakeoff.models import create_model


def make(seed: int, dropout: float, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("bakeoff:simple_cnn3d", in_channels=1, num_outputs=1, spatial_dims=3, input_shape=(9, 11, 11),
                        params={"dropout": dropout}).to(device)


def orders(seed: int, epochs: int, n: int, device: torch.device) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randperm(n, generator=g).to(device) for _ in range(epochs)]


def adam(params: list[torch.Tensor], device: torch.device) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=1e-3, fused=True) if device.type in ("cuda", "cpu") else \
        torch.optim.Adam(params, lr=1e-3)


def one_after_another(X: torch.Tensor, y: torch.Tensor, args: argparse.Namespace, device: torch.device,
                      graphs: bool = False) -> tuple[float, list[dict[str, torch.Tensor]]]:
    sync(device)
    t0 = time.perf_counter()
    finals = []
    for k in range(args.seeds):
        net = make(k, args.dropout, device)
        opt = adam(list(net.parameters()), device)
        step_net = torch.compile(net, mode="reduce-overhead") if graphs else net
        net.train()
        for order in orders(k, args.epochs, len(X), device):
            for i in range(0, len(order) - args.batch + 1, args.batch):  # full batches: one graph shape
                b = order[i:i + args.batch]
                loss = torch.nn.functional.binary_cross_entropy_with_logits(step_net(X[b]).reshape(-1), y[b])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        finals.append({n: p.detach().clone() for n, p in net.named_parameters()})
    sync(device)
    return time.perf_counter() - t0, finals


def fused(X: torch.Tensor, y: torch.Tensor, args: argparse.Namespace, device: torch.device
          ) -> tuple[float, list[dict[str, torch.Tensor]]]:
    from torch.func import functional_call, stack_module_state

    sync(device)
    t0 = time.perf_counter()
    models = [make(k, args.dropout, device) for k in range(args.seeds)]
    params, buffers = stack_module_state(models)  # name -> (K, ...) leaves, each seed's own initialisation
    base = copy.deepcopy(models[0]).to("meta")
    base.train()

    def forward(p: dict, b: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(base, (p, b), (x,))

    batched = torch.vmap(forward, randomness="different" if args.dropout > 0 else "error")
    opt = adam(list(params.values()), device)  # Adam is elementwise: K stacked runs = K separate optimizers
    per_seed = [orders(k, args.epochs, len(X), device) for k in range(args.seeds)]
    for epoch in range(args.epochs):
        idx = torch.stack([per_seed[k][epoch] for k in range(args.seeds)])  # (K, n): each seed its own order
        for i in range(0, idx.shape[1] - args.batch + 1, args.batch):
            b = idx[:, i:i + args.batch]
            logits = batched(params, buffers, X[b]).reshape(args.seeds, -1)
            losses = torch.nn.functional.binary_cross_entropy_with_logits(logits, y[b], reduction="none").mean(1)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()  # the gradient of seed k's parameters is that of its own loss
            opt.step()
    sync(device)
    elapsed = time.perf_counter() - t0
    return elapsed, [{n: p[k].detach().clone() for n, p in params.items()} for k in range(args.seeds)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--n", type=int, default=3200)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--cpu", action="store_true", help="on the CPU even when a GPU is present")
    args = ap.parse_args()
    device = torch.device("cpu") if args.cpu else pick_device()
    g = torch.Generator().manual_seed(0)
    X = torch.randn(args.n, 1, 9, 11, 11, generator=g).to(device)
    y = (torch.rand(args.n, generator=g) < 0.3).float().to(device)
    X[y.bool()] += 0.3
    modes = {"fused": lambda: fused(X, y, args, device)}
    if device.type == "cuda":
        modes["cuda graphs"] = lambda: one_after_another(X, y, args, device, graphs=True)
    print(f"{args.seeds} runs of the Simple CNN, {args.epochs} epochs x {args.n // args.batch} steps of batch "
          f"{args.batch}, dropout {args.dropout:g}; {describe(device)}")
    one_after_another(X, y, args, device)  # warm-up: kernels, allocator
    for name, run in modes.items():
        run()  # warm-up (and compilation, for the CUDA graphs)
        ratios, seq_times, times = [], [], []
        for r in range(args.pairs):  # alternating order: bakeoff's side-by-side rule
            if r % 2 == 0:
                t_seq, alone = one_after_another(X, y, args, device)
                t, packed = run()
            else:
                t, packed = run()
                t_seq, alone = one_after_another(X, y, args, device)
            seq_times.append(t_seq)
            times.append(t)
            ratios.append(t_seq / t)
        drift = max(float((a[n] - p[n]).abs().max()) for a, p in zip(alone, packed) for n in a)
        ratios_a = np.array(ratios)
        print(f"  {name}: {np.median(times):.2f} s vs one after another {np.median(seq_times):.2f} s; speed-up "
              f"{np.median(ratios_a):.2f}x [{ratios_a.min():.2f}, {ratios_a.max():.2f}], {len(ratios)} pairs; "
              f"largest weight difference to the runs alone {drift:.2e}"
              f"{' (dropout draws other masks)' if args.dropout > 0 else ''}")


if __name__ == "__main__":
    main()
