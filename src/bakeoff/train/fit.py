"""One training: seeded model, loss from the training split, bakeoff's loop, best weights restored."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn as nn

from bakeoff.config import ProtocolConfig
from bakeoff.losses import build_loss
from bakeoff.tasks import Task
from bakeoff.train import determinism
from bakeoff.train.data import ArrayBatches
from bakeoff.train.loop import (
    CHECKPOINT_EVERY_S,
    FitResult,
    _loggers,
    launched_by_slurm,
    make_fabric,
    run_fit,
    task_rank,
    world_size,
)
from bakeoff.train.module import BakeoffModule, inference_batch

__all__ = ["FitResult", "fit", "run_fit", "seed_everything", "set_tf32"]

# Lightning's advice that is noise for small in-memory data.
for _pattern in (".*does not have many workers.*", ".*The number of training batches.*",
                 ".*Checkpoint directory .* exists and is not empty.*", ".*GPU available but not used.*",
                 ".*LeafSpec.*", ".*treespec.*"):
    warnings.filterwarnings("ignore", message=_pattern)


def seed_everything(seed: int, deterministic: bool | str = "auto") -> None:
    L.seed_everything(seed, workers=True, verbose=False)
    determinism.cublas_workspace(deterministic)


def set_tf32(enabled: bool) -> None:
    """TensorFloat-32 for matmuls and cuDNN convolutions (Ampere+ GPUs); a no-op on CPU."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def fit(task: Task, model: nn.Module, protocol: ProtocolConfig, X_train: np.ndarray, y_train: np.ndarray,
        X_val: np.ndarray, y_val: np.ndarray, *, run_dir: Path | None, threshold: float = 0.5,
        report: Callable[[int, int, dict[str, float]], None] | None = None,
        checkpoint_every_s: float = CHECKPOINT_EVERY_S) -> FitResult:
    """Train ``model`` (already built under the run's seed) and restore the weights of the selected epoch."""
    protocol = task.with_selection(protocol)
    loss_fn = build_loss(protocol.loss, task, y_train)
    module = BakeoffModule(model, task, loss_fn, protocol, threshold)
    if world_size(protocol) > 1:
        return fit_multi_device(module, protocol, X_train, y_train, X_val, y_val, run_dir)
    fabric = make_fabric(protocol, _loggers(run_dir))  # one Fabric for the run: its device places the data
    device = fabric.device
    train = ArrayBatches(X_train, y_train, protocol.batch_size, shuffle=True, device=device)
    val = ArrayBatches(X_val, y_val, inference_batch(protocol, X_val.shape[1:]), shuffle=False, device=device)
    data = {"data_on_device": train.on_device and val.on_device, "pinned_memory": train.pinned,
            "data_streamed": train.stream is not None}
    return run_fit(module, protocol, train, val, run_dir, report, data, fabric=fabric,
                   checkpoint_every_s=checkpoint_every_s)


def fit_multi_device(module: BakeoffModule, protocol: ProtocolConfig, X_train: np.ndarray, y_train: np.ndarray,
                     X_val: np.ndarray, y_val: np.ndarray, run_dir: Path | None) -> FitResult:
    """DDP over ``protocol.devices`` spawned processes (Lightning Fabric's ``ddp_spawn``): each global batch of
    ``protocol.batch_size`` is split across them (so the run stays comparable with single-device ones),
    gradients are averaged, every process validates on the whole validation split and the first one's
    selection and stopping decide; the selected weights come back to this process."""
    order_seed = int(torch.randint(0, 2**31 - 1, (1,)).item())  # the batches' order, shared by the processes
    if launched_by_slurm():  # this process is one of the run's SLURM tasks (seeded alike: same order_seed)
        rank = task_rank()
        fabric = make_fabric(protocol, _loggers(run_dir) if rank == 0 else [], multi_device=True)
        fabric.launch()  # joins the process group SLURM's tasks form
        out = _multi_device_worker(fabric, module, protocol, X_train, y_train, X_val, y_val, run_dir, order_seed)
        fields = out[1] if out is not None else {k: None for k in FitResult.__dataclass_fields__ if k != "module"}
        return FitResult(module, **fields)  # the selected weights are in this process's module already
    fabric = make_fabric(protocol, _loggers(run_dir), multi_device=True)
    state, fields = fabric.launch(_multi_device_worker, module, protocol, X_train, y_train, X_val, y_val,
                                  run_dir, order_seed)
    module.model.load_state_dict(torch.load(io.BytesIO(state), map_location="cpu", weights_only=True))
    return FitResult(module, **fields)


def _multi_device_worker(fabric: L.Fabric, module: BakeoffModule, protocol: ProtocolConfig, X_train: np.ndarray,
                         y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray, run_dir: Path | None,
                         order_seed: int) -> Any:
    rank, world = fabric.global_rank, fabric.world_size
    train = ArrayBatches(X_train, y_train, protocol.batch_size, shuffle=True, seed=order_seed, device=fabric.device,
                         shard=(rank, world))
    val = ArrayBatches(X_val, y_val, inference_batch(protocol, X_val.shape[1:]), shuffle=False,
                       device=fabric.device)
    record = {"strategy": "ddp" if launched_by_slurm() else "ddp_spawn", "world_size": world, "num_nodes": protocol.num_nodes,
              "per_device_batch": -(-protocol.batch_size // world), "global_batch": protocol.batch_size,
              "data_on_device": train.on_device and val.on_device, "pinned_memory": train.pinned}
    report = None
    if rank == 0 and run_dir is not None:  # progress.json for bakeoff status (the caller's callback stays home)
        from bakeoff.train.progress import progress_recorder

        report = progress_recorder(None, Path(run_dir))
    result = run_fit(module, protocol, train, val, run_dir if rank == 0 else None, report, record, fabric=fabric)
    _leave_process_group(fabric)
    if rank != 0:
        return None
    fields = {k: getattr(result, k) for k in FitResult.__dataclass_fields__ if k != "module"}
    if launched_by_slurm():  # this process goes on with the selected weights in its own module
        return None, fields
    buf = io.BytesIO()  # bytes, not tensors: shared-memory handles would not outlive this process
    torch.save({k: v.detach().cpu() for k, v in module.model.state_dict().items()}, buf)
    return buf.getvalue(), fields


def _leave_process_group(fabric: L.Fabric) -> None:
    """Every process waits for the others to finish training, then destroys the process group itself.
    Left to the interpreter's exit, gloo's worker threads may be torn down before they are joined, and the
    process aborts with "terminate called without an active exception" (pytorch/pytorch#65231, #190489): a run
    that trained fine failed now and then. Only after training succeeded: a process whose training raised
    skips it, since a barrier would wait forever for it (the launcher ends the others)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        fabric.barrier()
        dist.destroy_process_group()
