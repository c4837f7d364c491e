"""The training loop: Lightning Fabric for devices, precision, strategies and loggers; bakeoff's own loop.

Why not Lightning's Trainer: with its ~40 hook calls, loop objects and result collection per step, the
Trainer cost a small model 15-30 % of its throughput against a hand-written loop (0.84x on CPU for the
18k-parameter spot CNN, 0.70x on an H200; even ``barebones=True`` without validation reached only 0.93x
on CPU). Fabric is Lightning's thin layer for exactly this case: the same accelerators, precision plugins
(AMP with its gradient scaler), strategies and loggers, around a loop we write. What the Trainer gave is kept
here: selection on a validation metric with the selected weights restored (Lightning ``ModelCheckpoint``
semantics: the first epoch, then every strict improvement), early stopping (``EarlyStopping`` semantics:
``min_delta``, ``patience``, stop on a non-finite value), gradient clipping by norm (after unscaling),
schedules stepped per batch or per epoch, the learning rate and a sampled gradient norm logged per epoch,
CSV and TensorBoard logs.

The fast path a careful engineer would write is on for every contender alike and recorded in ``run.json``
(``training``): in-memory data on the GPU when it fits, pinned non-blocking copies otherwise, fused
optimizer kernels where PyTorch has them, channels-last 2D convolutions on CUDA, cuDNN autotuning when
determinism is off, ``torch.compile`` when the protocol asks (its compile time reported apart).
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn as nn

from bakeoff.config import ExecutionConfig, ProtocolConfig
from bakeoff.faults import kill_point
from bakeoff.measure.speed import _sync
from bakeoff.train import determinism
from bakeoff.train.progress import Report


@dataclass
class FitResult:
    module: Any
    best_path: str | None
    best_epoch: int | None
    best_score: float | None
    epochs_trained: int
    train_time_s: float
    peak_memory_mb: float
    peak_memory_kind: str
    training: dict[str, Any] = field(default_factory=dict)


def world_size(protocol: ProtocolConfig) -> int:
    """Processes one run trains in: ``protocol.devices`` ("auto" counts as one) on each of ``num_nodes``."""
    return (protocol.devices if isinstance(protocol.devices, int) else 1) * protocol.num_nodes


# set (to "slurm") in the processes of a run whose DDP processes SLURM started as the tasks of one job
LAUNCHED_ENV = "BAKEOFF_DDP_LAUNCHED"


def launched_by_slurm() -> bool:
    import os

    return os.environ.get(LAUNCHED_ENV) == "slurm"


def task_rank() -> int:
    """This process's rank among a run's SLURM tasks (0 outside such a run)."""
    import os

    return int(os.environ.get("SLURM_PROCID", "0")) if launched_by_slurm() else 0


def make_fabric(protocol: ProtocolConfig, loggers: list[Any] | None = None, multi_device: bool = False) -> L.Fabric:
    """The run's Fabric; ``multi_device``: DDP over ``protocol.devices`` processes (spawned, so that it works
    from any entry point: the CLI, a notebook, a Ray or SLURM worker)."""
    import warnings

    from lightning.fabric.plugins.environments import LightningEnvironment

    from bakeoff.errors import BakeoffError

    with warnings.catch_warnings():  # a machine with SLURM's tools: one run is one process, not an srun task
        warnings.filterwarnings("ignore", message=".*`srun` command is available.*")
        # a multi-device run spawns its own processes, also inside a one-task SLURM job (whose environment
        # would otherwise make Lightning expect SLURM to have started them)
        plugins = [LightningEnvironment()] if multi_device else None
        strategy = "ddp_spawn" if multi_device else "auto"
        if multi_device and launched_by_slurm():  # SLURM started the processes: one per task, on every node
            from lightning.fabric.plugins.environments import SLURMEnvironment

            plugins, strategy = [SLURMEnvironment(auto_requeue=False)], "ddp"
        fabric = L.Fabric(accelerator=protocol.accelerator, devices=protocol.devices, precision=protocol.precision,
                          loggers=loggers or None, strategy=strategy, plugins=plugins, num_nodes=protocol.num_nodes)
    if fabric.world_size > 1 and not multi_device:
        raise BakeoffError(f"protocol.devices: {protocol.devices} gives {fabric.world_size} devices per run; "
                           f"expected 1 for this task (multi-device runs are for in-memory classification studies)")
    return fabric


def device_of(protocol: ProtocolConfig) -> torch.device:
    """The device a run with this protocol trains on (what Fabric picks; the first of several)."""
    return make_fabric(protocol, multi_device=world_size(protocol) > 1).device


def _loggers(run_dir: Path | None) -> list[Any]:
    if run_dir is None:
        return []
    from lightning.fabric.loggers import CSVLogger, TensorBoardLogger

    from bakeoff.layout import LOGS_DIR

    return [CSVLogger(run_dir / LOGS_DIR, name="csv", version=""),  # the report reads runs.store.CSV_LOG
            TensorBoardLogger(run_dir / LOGS_DIR, name="tensorboard", version="", default_hp_metric=False)]


def _optimizer(model: nn.Module, protocol: ProtocolConfig, device: torch.device) -> tuple[torch.optim.Optimizer, str]:
    """The protocol's optimizer with PyTorch's fused kernel when the device has one. Not with fp16 AMP:
    its gradient scaler must unscale before clipping or measuring the gradient norm, which a fused step,
    unscaling inside, does not allow; the multi-tensor (foreach) kernel then (PyTorch's CUDA default)."""
    from bakeoff.train.optim import build_optimizer

    scaler = protocol.precision == "16-mixed"
    kind = "foreach" if device.type == "cuda" else "for-loop"
    if not scaler and device.type in ("cuda", "cpu"):
        try:
            return build_optimizer(model.parameters(), protocol.optimizer, fused=True), "fused"
        except (RuntimeError, TypeError, ValueError):
            pass  # a parameter dtype or device without a fused kernel
    return build_optimizer(model.parameters(), protocol.optimizer), kind


def place(module: torch.nn.Module, raw: torch.nn.Module, device: torch.device, channels_last: bool) -> None:
    """Move everything the module owns to the device: the network (channels-last for 2D conv nets on
    CUDA) and every other part, such as the loss's class weights or prior (buffers), which a CUDA run
    otherwise meets on the CPU ("indices should be either on cpu or on the same device")."""
    raw.to(device, memory_format=torch.channels_last) if channels_last else raw.to(device)
    for child in module.children():
        if child is not raw:
            child.to(device)


def _is_2d_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


class Diverged(RuntimeError):
    """The training loss became NaN or infinite: the run is recorded as failed with the step."""


class Selection:
    """The selected epoch: Lightning ``ModelCheckpoint(save_top_k=1)`` semantics, the weights kept on the host."""

    def __init__(self, monitor: str, mode: str) -> None:
        self.monitor, self.mode = monitor, mode
        self.best: float | None = None
        self.epoch: int | None = None
        self.state: dict[str, torch.Tensor] | None = None

    def better(self, value: float) -> bool:
        if self.epoch is None:
            return True
        if not math.isfinite(value):
            return False
        if self.best is None or not math.isfinite(self.best):
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def update(self, epoch: int, metrics: dict[str, float], net: nn.Module, module: Any) -> None:
        if self.monitor not in metrics:
            raise RuntimeError(f"the selection metric {self.monitor} was not computed in epoch {epoch + 1} "
                               f"(computed: {sorted(metrics)}); a validation split holding one class has no AUROC")
        value = float(metrics[self.monitor])
        if self.better(value):
            self.best, self.epoch = value, epoch
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
            module.on_selected()


class EarlyStop:
    """Lightning ``EarlyStopping`` semantics (strict, check_finite)."""

    def __init__(self, monitor: str, mode: str, patience: int, min_delta: float) -> None:
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.min_delta = abs(min_delta)
        self.best = -math.inf if mode == "max" else math.inf
        self.wait = 0

    def should_stop(self, metrics: dict[str, float]) -> bool:
        if self.monitor not in metrics:
            raise RuntimeError(f"early stopping on {self.monitor}, which was not computed "
                               f"(computed: {sorted(metrics)})")
        value = float(metrics[self.monitor])
        if not math.isfinite(value):
            return True
        improved = value - self.min_delta > self.best if self.mode == "max" else value + self.min_delta < self.best
        if improved:
            self.best, self.wait = value, 0
            return False
        self.wait += 1
        return self.wait >= self.patience


# seconds between resume checkpoints (execution.checkpoint_every_s, passed down by the run; 0: every epoch).
# The default is the study file's, so that a direct ``fit`` (the Python API, the benchmarks) trains as a study
# run does: with every epoch's checkpoint (resnet18 + Adam: 135 MB) an H100 epoch took 2.9x the hand loop's.
CHECKPOINT_EVERY_S: float = ExecutionConfig.model_fields["checkpoint_every_s"].default


def run_fit(module: Any, protocol: ProtocolConfig, train_batches: Iterable, val_batches: Iterable,
            run_dir: Path | None, report: Report | None = None, training: dict[str, Any] | None = None,
            fabric: L.Fabric | None = None, checkpoint_every_s: float = CHECKPOINT_EVERY_S) -> FitResult:
    """Train ``module`` (a ``BakeoffModule``) for ``protocol.epochs`` with validation after each epoch;
    restore the selected epoch's weights. Batches arrive on the device (see ``ArrayBatches``) or are moved
    there here. ``training`` holds what the caller already set up (recorded in the result); the resume
    checkpoint is written at an epoch's end once ``checkpoint_every_s`` have passed since the last."""
    from bakeoff.train.optim import build_scheduler

    if fabric is None:
        loggers = _loggers(run_dir)
        fabric = make_fabric(protocol, loggers)
    else:  # one process of a multi-device run (see fit_multi_device): its Fabric came with the launch
        loggers = list(fabric.loggers)
    multi = fabric.world_size > 1
    device = fabric.device
    cuda = device.type == "cuda"
    raw = module.model
    with determinism.recorded(protocol.deterministic) as det:
        channels_last = cuda and _is_2d_conv(raw)
        place(module, raw, device, channels_last)
        opt, kind = _optimizer(raw, protocol, device)
        net = torch.compile(raw) if protocol.compile else raw
        fmodel, fopt = fabric.setup(net, opt)
        module.model = fmodel  # the precision context (autocast) and, for strategies, the wrapper's forward
        precision = fabric.strategy.precision
        scaler = getattr(precision, "scaler", None)
        steps = len(train_batches)  # type: ignore[arg-type]
        sched = build_scheduler(opt, protocol.schedule, protocol.optimizer.lr, steps * protocol.epochs,
                                protocol.epochs)
        per_step = sched is not None and sched["interval"] == "step"
        select = Selection(protocol.select.monitor, protocol.select.mode)
        es = protocol.early_stopping
        stopper = None if es is None else EarlyStop(es.monitor or protocol.select.monitor, protocol.select.mode,
                                                    es.patience, es.min_delta)
        convert = protocol.precision == "64-true"
        clip = protocol.gradient_clip
        record = dict(training or {})
        record.update(device=str(device), precision=protocol.precision, optimizer_kernel=kind,
                      channels_last=channels_last, cudnn_benchmark=bool(torch.backends.cudnn.benchmark),
                      tf32=bool(protocol.tf32), compile=bool(protocol.compile))
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        global_step, epoch, compile_s, lr, seen = 0, 0, 0.0, protocol.optimizer.lr, 0
        grad_norms: list[torch.Tensor] = []
        last = None if multi else resume_path(run_dir)  # a multi-device run restarts when interrupted
        logged: list[tuple[dict[str, float], int]] = []
        start, prior_time, stopped, rng = 0, 0.0, False, None
        ck = read_resume(last, record) if last is not None and last.is_file() else None
        if ck is not None:  # an interrupted run: continue after its last epoch
            raw.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            if sched is not None and ck["scheduler"] is not None:
                sched["scheduler"].load_state_dict(ck["scheduler"])
            if scaler is not None and ck["scaler"] is not None:
                scaler.load_state_dict(ck["scaler"])
            select.best, select.epoch, select.state = ck["select"]
            if stopper is not None and ck["stopper"] is not None:
                stopper.best, stopper.wait = ck["stopper"]
            module.load_resume_state(ck["module"])
            start, global_step, seen, lr = ck["epoch"] + 1, ck["global_step"], ck["seen"], ck["lr"]
            prior_time, compile_s, stopped, rng = ck["train_time"], ck["compile_time"], ck["stopped"], ck["rng"]
            epoch = ck["epoch"]
            for row, step in ck["logged"]:  # the logs continue as if uninterrupted
                fabric.log_dict(row, step=step)
                logged.append((row, step))
            record["resumed_after_epochs"] = start  # epochs the interrupted attempt had completed
        t0 = time.perf_counter()
        saved_at = time.monotonic()
        bad_step = torch.full((), -1, dtype=torch.long, device=device)  # first step with a non-finite loss
        try:
            for epoch in range(start, protocol.epochs if not stopped else start):
                if rng is not None:  # the random streams exactly where the interrupted run left them
                    _set_rng(rng)
                    rng = None
                for obj in (train_batches, getattr(train_batches, "sampler", None)):
                    if hasattr(obj, "set_epoch"):
                        obj.set_epoch(epoch)
                module.train()
                for batch in train_batches:
                    kill_point("step")
                    t_step = time.perf_counter() if protocol.compile and global_step == 0 else None
                    batch = _to(batch, device, channels_last, convert, precision)
                    with torch.no_grad():
                        batch = module.augment_batch(batch)
                    loss = module.training_step(batch)
                    # no device sync per step: the first bad step is kept on the device, read once an epoch
                    bad_step = torch.where((bad_step < 0) & ~torch.isfinite(loss.detach()), global_step, bad_step)
                    seen += len(batch[0])
                    fabric.backward(loss, model=fmodel)
                    sample = protocol.log_grad_norm and global_step % 10 == 0
                    if clip is not None:
                        norm = fabric.clip_gradients(fmodel, fopt, max_norm=clip, error_if_nonfinite=False)
                        if sample:
                            grad_norms.append(norm.detach())
                    elif sample:
                        if scaler is not None:
                            precision.unscale_gradients(opt)
                        grads = [p.grad for p in raw.parameters() if p.grad is not None]
                        if grads:
                            grad_norms.append(torch.nn.utils.get_total_norm(grads).detach())
                    fopt.step()
                    fopt.zero_grad(set_to_none=True)
                    lr = opt.param_groups[0]["lr"]
                    if per_step:
                        sched["scheduler"].step()
                    global_step += 1
                    if t_step is not None:
                        _sync(device)
                        compile_s += time.perf_counter() - t_step
                if multi:  # every process stops together when any of them diverged
                    bad_step = fabric.all_reduce(bad_step.float(), reduce_op="max").long()
                if int(bad_step) >= 0:
                    raise Diverged(f"the training loss became NaN or infinite at step {int(bad_step) + 1} "
                                   f"(epoch {epoch + 1}, learning rate {lr:g}); the run stopped there")
                metrics = module.train_epoch_metrics()
                metrics["lr"] = float(lr)
                if grad_norms:
                    metrics["grad_norm"] = float(torch.stack(grad_norms).float().mean())
                    grad_norms = []
                if sched is not None and not per_step:
                    sched["scheduler"].step()
                module.eval()
                t_val = time.perf_counter() if protocol.compile and epoch == 0 else None
                with torch.no_grad():
                    for batch in val_batches:
                        module.validation_step(_to(batch, device, channels_last, convert, precision))
                metrics.update(module.val_epoch_metrics())
                if t_val is not None:  # the first validation compiles the evaluation graph
                    compile_s += time.perf_counter() - t_val
                select.update(epoch, metrics, raw, module)
                row = {**metrics, "epoch": epoch}
                fabric.log_dict(row, step=global_step)
                logged.append((row, global_step))
                stop = stopper is not None and stopper.should_stop(metrics)
                if multi:  # the first process's selection and stopping decide for all
                    stop = bool(fabric.broadcast(stop, src=0))
                if last is not None and (time.monotonic() - saved_at >= checkpoint_every_s):
                    _sync(device)
                    save_atomic(last, {
                        "epoch": epoch, "global_step": global_step, "seen": seen, "lr": lr, "stopped": stop,
                        "train_time": prior_time + time.perf_counter() - t0 - compile_s, "compile_time": compile_s,
                        "model": raw.state_dict(), "optimizer": opt.state_dict(),
                        "scheduler": None if sched is None else sched["scheduler"].state_dict(),
                        "scaler": None if scaler is None else scaler.state_dict(),
                        "select": (select.best, select.epoch, select.state),
                        "stopper": None if stopper is None else (stopper.best, stopper.wait),
                        "module": module.resume_state(), "logged": logged, "rng": _get_rng(cuda)})
                    saved_at = time.monotonic()
                    kill_point("epoch")
                if report is not None:
                    report(epoch + 1, protocol.epochs, metrics)
                if stop:
                    break
            _sync(device)
            train_time = prior_time + time.perf_counter() - t0 - compile_s
        finally:
            module.model = raw
            for lg in loggers:
                lg.finalize("success")
    peak, peak_kind = (torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated") if cuda else \
        (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process_max_rss")
    record["determinism"] = det
    record["train_samples_per_s"] = seen / train_time if train_time > 0 else float("nan")
    if protocol.compile:
        record["compile_time_s"] = compile_s
    best_path = None
    if select.state is not None:
        raw.load_state_dict(select.state)
        if run_dir is not None:
            from bakeoff.layout import BEST_FILE, CHECKPOINTS_DIR

            path = Path(run_dir) / CHECKPOINTS_DIR / BEST_FILE
            # weights only (the optimizer state tripled the size); keys as the module's state_dict; written
            # atomically (a kill while saving leaves no half file where the weights should be)
            save_atomic(path, {"state_dict": {f"model.{k}": v for k, v in select.state.items()},
                               "epoch": select.epoch, "monitor": select.monitor, "score": select.best})
            best_path = str(path)
    best_epoch = None if select.epoch is None else select.epoch + 1
    return FitResult(module, best_path, best_epoch, select.best, epoch + 1, train_time, peak, peak_kind, record)


def resume_path(run_dir: Path | None) -> Path | None:
    """checkpoints/last.ckpt: everything an interrupted run needs to continue."""
    if run_dir is None:
        return None
    from bakeoff.layout import CHECKPOINTS_DIR, RESUME_FILE

    return Path(run_dir) / CHECKPOINTS_DIR / RESUME_FILE


RESUME_KEYS = ("epoch", "global_step", "seen", "lr", "stopped", "train_time", "compile_time", "model", "optimizer",
               "scheduler", "scaler", "select", "stopper", "module", "logged", "rng")


def read_resume(path: Path, record: dict[str, Any]) -> dict[str, Any] | None:
    """The resume checkpoint, or None when it cannot be read whole (damaged on disk, cut short, from
    another version, or holding anything but tensors and plain values): the run then starts over cleanly,
    saying so in run.json (``resume_discarded``). Read with ``weights_only=True`` like every checkpoint:
    the random states are saved as tensors and numbers (``_get_rng``)."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        missing = [k for k in RESUME_KEYS if k not in ck]
        if missing:
            raise ValueError(f"missing {missing}")
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint: train from the start instead
        record["resume_discarded"] = f"{path.name} unreadable ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
        path.unlink(missing_ok=True)
        return None
    return ck


def save_atomic(path: Path, obj: Any) -> None:
    """``torch.save`` so that an interruption while writing leaves the previous file (or none), never a part:
    the kept weights and the resume checkpoint."""
    import io

    from bakeoff.utils import atomic_write_bytes

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def _get_rng(cuda: bool) -> dict[str, Any]:
    """Every random stream's state, as tensors and plain numbers (loadable with ``weights_only=True``)."""
    import random

    name, key, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "numpy": {"name": str(name), "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "gauss": float(gauss)},
            "python": random.getstate(), "cuda": torch.cuda.get_rng_state_all() if cuda else None}


def _set_rng(state: dict[str, Any]) -> None:
    import random

    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    random.setstate(state["python"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to(batch: Any, device: torch.device, channels_last: bool, convert: bool, precision: Any) -> Any:
    """Move a batch to the device (a no-op for batches already there), in the layout and dtype the run uses."""
    out = []
    for i, t in enumerate(batch):
        if t.device != device:
            t = t.to(device, non_blocking=True)
        if i == 0:
            if channels_last and t.ndim == 4:
                t = t.contiguous(memory_format=torch.channels_last)
            if convert:
                t = precision.convert_input(t)
        out.append(t)
    return tuple(out)

