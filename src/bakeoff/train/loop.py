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

import contextlib
import dataclasses
import math
import os
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
from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO

from bakeoff.config import ExecutionConfig, ProtocolConfig
from bakeoff.faults import fault_armed, kill_point
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
        plugins: list[Any] = [LightningEnvironment()] if multi_device else []
        strategy = "ddp_spawn" if multi_device else "auto"
        if multi_device and launched_by_slurm():  # SLURM started the processes: one per task, on every node
            from lightning.fabric.plugins.environments import SLURMEnvironment

            plugins, strategy = [SLURMEnvironment(auto_requeue=False)], "ddp"
        plugins.append(AtomicCheckpointIO())  # fabric.save / fabric.load: whole files, weights-only reads
        fabric = L.Fabric(accelerator=protocol.accelerator, devices=protocol.devices, precision=protocol.precision,
                          loggers=loggers or None, strategy=strategy, plugins=plugins, num_nodes=protocol.num_nodes)
    if fabric.world_size > 1 and not multi_device:
        raise BakeoffError(f"protocol.devices: {protocol.devices} gives {fabric.world_size} devices per run; "
                           f"expected 1 for this task (multi-device runs are for in-memory classification studies)")
    return fabric


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


@dataclass
class LoopState:
    """Where the loop stands after an epoch: with the stateful objects (model, optimizer, schedule, gradient
    scaler) everything an interrupted run needs to continue. The one definition of what
    ``checkpoints/last.ckpt`` holds: written by ``save_resume`` and read back by ``load_resume``."""

    epoch: int = -1  # the last completed epoch (-1: none yet)
    global_step: int = 0
    seen: int = 0  # training samples seen
    lr: float = 0.0
    stopped: bool = False  # early stopping fired after ``epoch``
    train_time: float = 0.0  # seconds, compilation left out
    compile_time: float = 0.0
    select: tuple[Any, Any, Any] = (None, None, None)  # Selection (best, epoch, weights)
    stopper: tuple[float, int] | None = None  # EarlyStop (best, wait)
    module: Any = None  # the module's own resume state (BakeoffModule.resume_state)
    logged: list[tuple[dict[str, float], int]] = field(default_factory=list)  # every logged row and its step
    rng: dict[str, Any] | None = None  # every random stream (_get_rng)

    OBJECTS = ("model", "optimizer", "scheduler", "scaler")  # saved through their state_dict by Fabric


def save_resume(fabric: L.Fabric, path: Path, state: LoopState, objects: dict[str, Any]) -> None:
    """Write the resume checkpoint through Fabric (``fabric.save``: state dicts of the stateful objects,
    written atomically by ``AtomicCheckpointIO``)."""
    fabric.save(path, {**{k: objects.get(k) for k in LoopState.OBJECTS},
                       "state": {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}})


def load_resume(fabric: L.Fabric, path: Path, objects: dict[str, Any], record: dict[str, Any]) -> LoopState | None:
    """Restore ``objects`` (model, optimizer, schedule, scaler) from the resume checkpoint and return the
    loop's state; None when it cannot be read whole (damaged on disk, cut short, from another version, or
    holding anything but tensors and plain values: read with ``weights_only=True`` like every checkpoint),
    and then nothing is restored: the run starts over cleanly, saying so in run.json (``resume_discarded``)."""
    try:
        ck = fabric.load(path)
        missing = [k for k in (*LoopState.OBJECTS, "state") if k not in ck]
        if missing:
            raise ValueError(f"missing {missing}")
        state = LoopState(**ck["state"])
        for name in LoopState.OBJECTS:
            if (ck[name] is None) != (objects.get(name) is None):
                raise ValueError(f"{name} saved {'without' if ck[name] is None else 'with'} a state; this run has "
                                 f"{'none' if objects.get(name) is None else 'one'}")
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint: train from the start instead
        record["resume_discarded"] = f"{path.name} unreadable ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
        path.unlink(missing_ok=True)
        return None
    for name in LoopState.OBJECTS:
        if objects.get(name) is not None:
            objects[name].load_state_dict(ck[name])
    return state


def resume_path(run_dir: Path | None) -> Path | None:
    """checkpoints/last.ckpt: everything an interrupted run needs to continue."""
    if run_dir is None:
        return None
    from bakeoff.layout import CHECKPOINTS_DIR, RESUME_FILE

    return Path(run_dir) / CHECKPOINTS_DIR / RESUME_FILE


class AtomicCheckpointIO(CheckpointIO):
    """Fabric's checkpoint IO for every file a run saves (``fabric.save`` / ``fabric.load``): written whole or
    not at all (``save_atomic``), read as tensors and plain values only (``weights_only=True``)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        save_atomic(Path(path), checkpoint)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return torch.load(path, map_location=map_location or "cpu",
                          weights_only=True if weights_only is None else weights_only)

    def remove_checkpoint(self, path: Any) -> None:
        Path(path).unlink(missing_ok=True)


NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


@contextlib.contextmanager
def _no_nvml_probe_per_step():
    """Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` when imported, so that asking whether CUDA is there
    does not initialise it (and poison ``fork``). Until CUDA is initialised torch does not cache the answer,
    so on a machine with no usable GPU every ``torch.cuda.is_available()`` loads NVML again — and Adam and
    AdamW ask on every step (their CUDA-graph capture check). Under the run's warning recorder that cost 0.27 ms
    a step, 8 % of a small 3D CNN's step on CPU (``benchmarks/bench_train_throughput.py``). Where no GPU is
    usable, CUDA's own device count answers instead for the run (0 without a driver, nothing to poison)."""
    if os.environ.get(NVML_CHECK) != "1" or torch.cuda.is_available():
        yield
        return
    del os.environ[NVML_CHECK]
    try:
        yield
    finally:
        os.environ[NVML_CHECK] = "1"


def run_fit(module: Any, protocol: ProtocolConfig, train_batches: Iterable, val_batches: Iterable,
            run_dir: Path | None, report: Report | None = None, training: dict[str, Any] | None = None,
            fabric: L.Fabric | None = None, checkpoint_every_s: float = CHECKPOINT_EVERY_S) -> FitResult:
    """Train ``module`` (a ``BakeoffModule``) for ``protocol.epochs`` with validation after each epoch;
    restore the selected epoch's weights. Batches arrive on the device (see ``ArrayBatches``) or are moved
    there here. ``training`` holds what the caller already set up (recorded in the result); the resume
    checkpoint is written at an epoch's end once ``checkpoint_every_s`` have passed since the last.

    The steps: set up (``_Setup``: device, precision, optimizer, schedule, selection, stopping), continue an
    interrupted run (``load_resume``), then per epoch ``_train_epoch``, ``_validate``, select and maybe stop,
    ``save_resume``; finally the selected weights restored and kept (``_keep_selected``)."""
    if fabric is None:
        loggers = _loggers(run_dir)
        fabric = make_fabric(protocol, loggers)
    else:  # the caller's (``fit``: made once, its device placed the data; a multi-device run: its launch's)
        loggers = list(fabric.loggers)
    raw = module.model
    with determinism.recorded(protocol.deterministic) as det, _no_nvml_probe_per_step():
        run = _Setup(fabric, module, protocol, train_batches, training)
        state = LoopState(lr=protocol.optimizer.lr)
        last = None if run.multi else resume_path(run_dir)  # a multi-device run restarts when interrupted
        objects = {"model": raw, "optimizer": run.opt, "scaler": run.scaler,
                   "scheduler": None if run.sched is None else run.sched["scheduler"]}
        resumed = load_resume(fabric, last, objects, run.record) if last is not None and last.is_file() else None
        if resumed is not None:  # an interrupted run: continue after its last epoch, logs and streams as they were
            state = resumed
            run.select.best, run.select.epoch, run.select.state = state.select
            if run.stopper is not None and state.stopper is not None:
                run.stopper.best, run.stopper.wait = state.stopper
            module.load_resume_state(state.module)
            for row, step in state.logged:
                fabric.log_dict(row, step=step)
            _set_rng(state.rng)
            run.record["resumed_after_epochs"] = state.epoch + 1  # epochs the interrupted attempt completed
        prior_time, t0, saved_at = state.train_time, time.perf_counter(), time.monotonic()
        try:
            for epoch in range(state.epoch + 1, protocol.epochs if not state.stopped else 0):
                metrics = _train_epoch(run, state, epoch, train_batches)
                metrics.update(_validate(run, state, epoch, val_batches))
                run.select.update(epoch, metrics, raw, module)
                row = {**metrics, "epoch": epoch}
                fabric.log_dict(row, step=state.global_step)
                state.logged.append((row, state.global_step))
                stop = run.stopper is not None and run.stopper.should_stop(metrics)
                if run.multi:  # the first process's selection and stopping decide for all
                    stop = bool(fabric.broadcast(stop, src=0))
                state.epoch, state.stopped = epoch, stop
                if last is not None and (time.monotonic() - saved_at >= checkpoint_every_s):
                    _sync(run.device)
                    state.train_time = prior_time + time.perf_counter() - t0 - state.compile_time
                    state.select = (run.select.best, run.select.epoch, run.select.state)
                    state.stopper = None if run.stopper is None else (run.stopper.best, run.stopper.wait)
                    state.module, state.rng = module.resume_state(), _get_rng(run.cuda)
                    save_resume(fabric, last, state, objects)
                    saved_at = time.monotonic()
                    kill_point("epoch")
                if report is not None:
                    report(epoch + 1, protocol.epochs, metrics)
                if stop:
                    break
            _sync(run.device)
            train_time = prior_time + time.perf_counter() - t0 - state.compile_time
        finally:
            module.model = raw
            for lg in loggers:
                lg.finalize("success")
    record = run.record
    record["determinism"] = det
    record["train_samples_per_s"] = state.seen / train_time if train_time > 0 else float("nan")
    if protocol.compile:
        record["compile_time_s"] = state.compile_time
    peak, peak_kind = (torch.cuda.max_memory_allocated(run.device) / 2**20, "cuda_max_allocated") if run.cuda else \
        (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process_max_rss")
    best_path = _keep_selected(run.select, raw, run_dir)
    best_epoch = None if run.select.epoch is None else run.select.epoch + 1
    return FitResult(module, best_path, best_epoch, run.select.best, state.epoch + 1, train_time, peak, peak_kind,
                     record)


class _Setup:
    """What one run's loop trains with, set up once: the module placed on Fabric's device (channels-last
    2D convolutions on CUDA), the optimizer (fused kernels where PyTorch has them) and model wrapped by
    Fabric (precision, strategy), the schedule, selection and early stopping, and the record of how it
    trains (``run.json``'s ``training``)."""

    def __init__(self, fabric: L.Fabric, module: Any, protocol: ProtocolConfig, train_batches: Iterable,
                 training: dict[str, Any] | None) -> None:
        from bakeoff.train.optim import build_scheduler

        self.fabric, self.module, self.protocol = fabric, module, protocol
        self.device = fabric.device
        self.cuda = self.device.type == "cuda"
        self.multi = fabric.world_size > 1
        raw = self.raw = module.model
        self.channels_last = self.cuda and _is_2d_conv(raw)
        place(module, raw, self.device, self.channels_last)
        self.opt, kind = _optimizer(raw, protocol, self.device)
        net = torch.compile(raw) if protocol.compile else raw
        self.fmodel, self.fopt = fabric.setup(net, self.opt)
        self.precision = fabric.strategy.precision
        self.scaler = getattr(self.precision, "scaler", None)
        # Fabric's wrappers are used where they do more than plain PyTorch would: a strategy's forward and
        # gradient sync (several devices), inputs converted for a "-true" half precision, gradient scaling for
        # 16-mixed. On one device at 32-true or *-mixed its module wrapper adds only Python per call (the
        # module's own precision context, ``BakeoffModule.net``, does the autocast and float32 outputs), and
        # without a scaler its backward and optimizer step are ``loss.backward()`` and ``optimizer.step()``:
        # then those are called directly. Measured: 2.5 % of a small CNN's step on CPU
        # (benchmarks/bench_train_throughput.py); everything else (device, precision, loggers, checkpoint I/O,
        # launching) stays Fabric's.
        direct = not self.multi and (protocol.precision == "32-true" or protocol.precision.endswith("-mixed"))
        module.model = net if direct else self.fmodel
        self.direct_step = direct and self.scaler is None
        steps = len(train_batches)  # type: ignore[arg-type]
        self.sched = build_scheduler(self.opt, protocol.schedule, protocol.optimizer.lr, steps * protocol.epochs,
                                     protocol.epochs)
        self.per_step = self.sched is not None and self.sched["interval"] == "step"
        self.select = Selection(protocol.select.monitor, protocol.select.mode)
        es = protocol.early_stopping
        self.stopper = None if es is None else EarlyStop(es.monitor or protocol.select.monitor, protocol.select.mode,
                                                         es.patience, es.min_delta)
        self.convert = protocol.precision == "64-true"
        self.record = dict(training or {})
        self.record.update(device=str(self.device), precision=protocol.precision, optimizer_kernel=kind,
                           channels_last=self.channels_last, cudnn_benchmark=bool(torch.backends.cudnn.benchmark),
                           tf32=bool(protocol.tf32), compile=bool(protocol.compile))
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        self.grad_norms: list[torch.Tensor] = []
        # batches arrive as the step needs them (ArrayBatches on the device, no layout or dtype change)
        self.batches_ready = (getattr(train_batches, "on_device", False) and getattr(train_batches, "device", None)
                              == self.device and not self.channels_last and not self.convert)

    def to_device(self, batch: Any) -> Any:
        return _to(batch, self.device, self.channels_last, self.convert, self.precision)


def _train_epoch(run: _Setup, state: LoopState, epoch: int, train_batches: Iterable) -> dict[str, float]:
    """One pass over the training batches: forward, backward (through Fabric: AMP scaling), clipping, step,
    the schedule; the epoch's training metrics, learning rate and sampled gradient norm. A non-finite loss
    is noticed without a device sync per step and ends the run (``Diverged``)."""
    fabric, module, protocol, raw = run.fabric, run.module, run.protocol, run.raw
    for obj in (train_batches, getattr(train_batches, "sampler", None)):
        if hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)
    module.train()
    clip = protocol.gradient_clip
    losses: list[torch.Tensor] = []  # checked for a non-finite value once, at the epoch's end
    first_step = state.global_step
    # per step only what the step needs: each Python call here is paid ~100 times a second on a small network
    killable = fault_armed()
    timed_compile = protocol.compile and state.global_step == 0
    augments = module.augments()
    for batch in train_batches:
        if killable:
            kill_point("step")
        t_step = time.perf_counter() if timed_compile and state.global_step == 0 else None
        if not run.batches_ready:
            batch = run.to_device(batch)
        if augments:
            with torch.no_grad():
                batch = module.augment_batch(batch)
        loss = module.training_step(batch)
        losses.append(loss.detach())
        state.seen += batch[0].shape[0]
        if run.direct_step:
            loss.backward()
        else:
            fabric.backward(loss, model=run.fmodel)
        sample = protocol.log_grad_norm and state.global_step % 10 == 0
        if clip is not None:
            norm = fabric.clip_gradients(run.fmodel, run.fopt, max_norm=clip, error_if_nonfinite=False)
            if sample:
                run.grad_norms.append(norm.detach())
        elif sample:
            if run.scaler is not None:
                run.precision.unscale_gradients(run.opt)
            grads = [p.grad for p in raw.parameters() if p.grad is not None]
            if grads:
                run.grad_norms.append(torch.nn.utils.get_total_norm(grads).detach())
        if run.direct_step:
            run.opt.step()
            run.opt.zero_grad(set_to_none=True)
        else:
            run.fopt.step()
            run.fopt.zero_grad(set_to_none=True)
        state.lr = run.opt.param_groups[0]["lr"]
        if run.per_step:
            run.sched["scheduler"].step()
        state.global_step += 1
        if t_step is not None:
            _sync(run.device)
            state.compile_time += time.perf_counter() - t_step
    bad = (~torch.isfinite(torch.stack(losses))).nonzero() if losses else None
    bad_step = torch.tensor(first_step + int(bad[0, 0]) if bad is not None and len(bad) else -1, device=run.device)
    if run.multi:  # every process stops together when any of them diverged
        bad_step = fabric.all_reduce(bad_step.float(), reduce_op="max").long()
    if int(bad_step) >= 0:
        raise Diverged(f"the training loss became NaN or infinite at step {int(bad_step) + 1} "
                       f"(epoch {epoch + 1}, learning rate {state.lr:g}); the run stopped there")
    metrics = module.train_epoch_metrics()
    metrics["lr"] = float(state.lr)
    if run.grad_norms:
        metrics["grad_norm"] = float(torch.stack(run.grad_norms).float().mean())
        run.grad_norms = []
    if run.sched is not None and not run.per_step:
        run.sched["scheduler"].step()
    return metrics


def _validate(run: _Setup, state: LoopState, epoch: int, val_batches: Iterable) -> dict[str, float]:
    """The validation metrics of this epoch's weights (the first validation's compile time counted apart)."""
    run.module.eval()
    t_val = time.perf_counter() if run.protocol.compile and epoch == 0 else None
    with torch.no_grad():
        for batch in val_batches:
            run.module.validation_step(run.to_device(batch))
    metrics = run.module.val_epoch_metrics()
    if t_val is not None:
        state.compile_time += time.perf_counter() - t_val
    return metrics


def _keep_selected(select: Selection, raw: nn.Module, run_dir: Path | None) -> str | None:
    """The selected epoch's weights back in the model, and kept as checkpoints/best.ckpt: weights only (the
    optimizer state tripled the size), keys as the module's state_dict, written atomically (a kill while
    saving leaves no half file where the weights should be). Only the first process of a multi-device run
    has a ``run_dir``, so the file is written directly, not through ``fabric.save``, which waits for all."""
    if select.state is None:
        return None
    raw.load_state_dict(select.state)
    if run_dir is None:
        return None
    from bakeoff.layout import BEST_FILE, CHECKPOINTS_DIR

    path = Path(run_dir) / CHECKPOINTS_DIR / BEST_FILE
    save_atomic(path, {"state_dict": {f"model.{k}": v for k, v in select.state.items()},
                       "epoch": select.epoch, "monitor": select.monitor, "score": select.best})
    return str(path)


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

