"""A whole bake-off as users write it by hand today (the reference of ``bench_study_overhead.py compare``).

Two contenders x N seeds on the demo's data, made as a script makes it: the same generator
(``make_spots3d``, bakeoff's ``builtin:spots3d``) with the study's parameters, each patch scaled to [0, 1]
(``normalize: minmax``); the split's indices come from an npz so that both sides train, select and test on
the same samples (``bench_study_overhead.py`` checks that the arrays are bakeoff's). Each run trains with fused Adam, one-cycle
schedule, class-balanced BCE and random flips / 90-degree rotations, scores validation AUROC after every
epoch, keeps the best weights and writes them to a file; then test AUROC with those weights, and at the end
a paired t-test over seeds of the contenders' test AUROC. Everything a careful script does, nothing more:
no plots, no report, no timing of inference, no checks.

    python benchmarks/handwritten_study.py DATA.npz --epochs 3 --seeds 2 --out DIR
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def load_spots(params: dict) -> tuple:
    """The demo's samples as (N, 1, z, y, x) float32 in [0, 1] per patch, and their labels."""
    import numpy as np
    import torch

    from bakeoff.data.spots3d import make_spots3d

    d = make_spots3d(**params)
    X = d["X"]
    lo, hi = X.min(axis=(1, 2, 3), keepdims=True), X.max(axis=(1, 2, 3), keepdims=True)
    X = ((X - lo) / np.maximum(hi - lo, 1e-8)).astype(np.float32)[:, None]
    return torch.from_numpy(X), torch.from_numpy(d["y"]).long()


def main() -> None:
    t0 = time.perf_counter()
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import numpy as np
    import torch
    from scipy import stats
    from sklearn.metrics import roc_auc_score

    from bakeoff.models import create_model  # the same architectures as the study's contenders

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with np.load(args.data) as f:
        params = json.loads(str(f["params"]))
        tr, va, te = (torch.from_numpy(f[k]).long() for k in ("train", "val", "test"))
    X, y = load_spots(params)
    contenders = {"simple_cnn": ("bakeoff:simple_cnn3d", {}),
                  "se_resnet3d": ("bakeoff:se_resnet", {"spatial_dims": 3, "base_channels": 16, "use_se": True})}
    n_pos = int(y[tr].sum())
    w = torch.tensor([len(tr) / (2 * (len(tr) - n_pos)), len(tr) / (2 * n_pos)])  # sklearn's "balanced"

    def augment(x: torch.Tensor) -> torch.Tensor:
        n, shape = len(x), (len(x),) + (1,) * (x.ndim - 1)
        for dim in range(2, x.ndim):
            x = torch.where((torch.rand(n) < 0.5).view(shape), x.flip(dim), x)
        k = torch.randint(0, 4, (n,))
        out = x
        for kk in (1, 2, 3):
            out = torch.where((k == kk).view(shape), torch.rot90(x, kk, dims=(-2, -1)), out)
        return out

    def predict(net: torch.nn.Module, idx: torch.Tensor) -> np.ndarray:
        net.eval()
        with torch.no_grad():
            return torch.cat([torch.sigmoid(net(X[idx[i:i + 256]]).reshape(-1))
                              for i in range(0, len(idx), 256)]).numpy()

    results: dict[str, list[float]] = {c: [] for c in contenders}
    train_s: dict[str, list[float]] = {c: [] for c in contenders}  # model built to best weights chosen
    for name, (model, params) in contenders.items():
        for seed in range(args.seeds):
            t_run = time.perf_counter()
            torch.manual_seed(seed)
            net = create_model(model, in_channels=1, num_outputs=1, spatial_dims=3, input_shape=tuple(X.shape[2:]),
                               params=params)
            opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
            steps = args.epochs * ((len(tr) + args.batch_size - 1) // args.batch_size)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=steps)
            best, best_state = -1.0, None
            for _ in range(args.epochs):
                net.train()
                order = tr[torch.randperm(len(tr))]
                for i in range(0, len(order), args.batch_size):
                    b = order[i:i + args.batch_size]
                    logits = net(augment(X[b])).reshape(-1)
                    target = y[b].float()
                    loss = (torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
                            * w[y[b]]).mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                score = roc_auc_score(y[va].numpy(), predict(net, va))
                if score > best:
                    best, best_state = score, {k: v.detach().clone() for k, v in net.state_dict().items()}
            train_s[name].append(time.perf_counter() - t_run)
            torch.save(best_state, out / f"{name}_seed{seed}.pt")
            net.load_state_dict(best_state)
            results[name].append(float(roc_auc_score(y[te].numpy(), predict(net, te))))
    a, b = (np.array(results[c]) for c in ("se_resnet3d", "simple_cnn"))
    t = stats.ttest_rel(a, b) if len(a) > 1 else None
    summary = {"test_auroc": results, "difference": float((a - b).mean()),
               "p_value": float(t.pvalue) if t is not None else None, "train_s": train_s,
               "wall_s": time.perf_counter() - t0}
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
