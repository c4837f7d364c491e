"""Execute one run: a pure function of (study, contender, seed, fold) that leaves its files on disk."""

from __future__ import annotations

import os
import platform
import socket
import time
import traceback
from typing import Any

import numpy as np
import torch

from bakeoff.errors import storage_full, storage_full_error
from bakeoff.measure.metrics import SCORES_FILE, evaluate_predictions, predictions_arrays
from bakeoff.measure.speed import measure_inference
from bakeoff.models import count_parameters
from bakeoff.runs.context import RunSpec, StudyContext
from bakeoff.runs.store import (
    DONE,
    FAILED,
    METRICS_FILE,
    PREDICTIONS_FILE,
    RUNNING,
    StudyStore,
)
from bakeoff.train.fit import seed_everything, set_tf32
from bakeoff.train.progress import Report, progress_recorder
from bakeoff.utils import save_npz, sha256_of, write_json


def versions() -> dict[str, str]:
    import lightning
    import torchmetrics

    import bakeoff

    return {"bakeoff": bakeoff.__version__, "python": platform.python_version(), "torch": torch.__version__,
            "lightning": lightning.__version__, "torchmetrics": torchmetrics.__version__,
            "numpy": np.__version__, "platform": platform.platform()}


def hardware() -> dict[str, Any]:
    """What the run trained on, for the report's header and methods paragraph."""
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return {"cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(), "gpus": gpus}




def predict_and_save(ctx: StudyContext, run: RunSpec, module: Any, run_dir: Any,
                     input_shape: tuple[int, ...]) -> dict[str, Any]:
    """Predict the run's validation and test samples with a trained module, save predictions.npz and
    metrics.json (and feature maps), and time inference; returns the speed figures."""
    cfg, data = ctx.config, ctx.data
    protocol = run.resolved_protocol() if run.protocol is not None else ctx.protocol(run.contender)
    contender = cfg.contenders[run.contender]
    split = ctx.splits[run.fold]
    va, te = split.val, split.test
    preds = ctx.strategy.predict_parts(ctx.task, module, data, va, te, protocol)
    ctx.task.save_extras(module, data, va, preds, contender, cfg.evaluation, input_shape, run_dir)
    example = ctx.task.speed_example(data, te, input_shape, protocol.batch_size)
    save_npz(run_dir / PREDICTIONS_FILE, **predictions_arrays(preds))
    write_json(run_dir / METRICS_FILE, evaluate_predictions(ctx.task, preds, cfg.evaluation.threshold,
                                                            cache=run_dir / SCORES_FILE,
                                                            chance_metric=cfg.evaluation.primary))
    if not cfg.evaluation.speed:
        return {}
    return measure_inference(module.model, example, protocol.batch_size, cfg.evaluation.speed_repeats,
                             forward=module.net)


def train_model(ctx: StudyContext, model: torch.nn.Module, protocol: Any, fold: int, seed: int, run_dir: Any,
                report: Report | None = None) -> Any:
    """Train ``model`` on the fold's training part, selecting on its validation part (the task's loop:
    arrays in memory, or patches of images for dense tasks); the selected weights restored."""
    split = ctx.splits[fold]
    return ctx.strategy.fit(ctx.task, model, protocol, ctx.data, split.train, split.val, run_dir=run_dir,
                            seed=seed, threshold=ctx.config.evaluation.threshold, report=report,
                            checkpoint_every_s=ctx.config.execution.checkpoint_every_s)


def train_as_rank(ctx: StudyContext, run: RunSpec) -> None:
    """A further process of a run whose DDP processes SLURM started as tasks: the same seeded steps as
    ``execute_run`` up to training (so that every process draws the same batch order), then training beside
    the first process, which alone writes the run's files."""
    protocol = run.resolved_protocol() if run.protocol is not None else ctx.protocol(run.contender)
    stream = protocol.stream_seed(run.seed, run.contender)
    seed_everything(stream, protocol.deterministic)
    set_tf32(protocol.tf32)
    model = ctx.build_model(run.contender, protocol, fold=run.fold)
    train_model(ctx, model, protocol, run.fold, stream, None)


def execute_run(ctx: StudyContext, store: StudyStore, run: RunSpec, report: Report | None = None) -> dict[str, Any]:
    """Train, select, predict, evaluate and time one run; a failure is recorded, never cached as done."""
    run_dir = store.start(run)
    cfg = ctx.config
    contender = cfg.contenders[run.contender]
    protocol = run.resolved_protocol() if run.protocol is not None else ctx.protocol(run.contender)
    split = ctx.splits[run.fold]
    data = ctx.data
    info: dict[str, Any] = {
        "contender": run.contender, "seed": run.seed, "fold": run.fold, "run_id": run.run_id, "hash": run.hash,
        "stream_seed": protocol.stream_seed(run.seed, run.contender),
        "status": RUNNING, "model": contender.model, "params": contender.params,
        "protocol": protocol.model_dump(mode="json"), "split": split.fingerprints(data.ids),
        "split_sizes": {p: len(split.indices(p)) for p in ("train", "val", "test")},
        "class_counts": {p: ctx.class_counts(split.indices(p)) for p in ("train", "val", "test")},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": versions(),
        "host": socket.gethostname(), "pid": os.getpid(), "hardware": hardware(),
    }
    store.write_run(run, info)
    t_start = time.perf_counter()
    try:
        seed_everything(info["stream_seed"], protocol.deterministic)
        set_tf32(protocol.tf32)
        input_shape = ctx.input_shape(run.contender, run.fold, protocol)
        model = ctx.build_model(run.contender, protocol, fold=run.fold)
        info["n_parameters"] = count_parameters(model)
        result = train_model(ctx, model, protocol, run.fold, info["stream_seed"], run_dir,
                             progress_recorder(report, run_dir))
        module = result.module
        from bakeoff.train import determinism

        with determinism.applied(protocol.deterministic):  # predicted as trained; the process's own after
            info["speed"] = predict_and_save(ctx, run, module, run_dir, input_shape)
        info.update(
            status=DONE, best_epoch=result.best_epoch, best_score=result.best_score,
            epochs_trained=result.epochs_trained, train_time_s=result.train_time_s,
            peak_memory_mb=result.peak_memory_mb, peak_memory_kind=result.peak_memory_kind,
            device=str(module.device), training=result.training,
        )
        if result.best_path:  # what bakeoff evaluate and a reader of the run can check the weights against
            info["checkpoint_sha256"] = sha256_of(result.best_path)
        if not cfg.execution.keep_checkpoints and result.best_path:
            os.remove(result.best_path)
    except Exception as exc:  # noqa: BLE001 - one failed run must not end the sweep; it is recorded
        if storage_full(exc):  # not the contender's failure, and every later write would meet it too: stop
            raise storage_full_error(exc, f"writing run {run.key}", where=run_dir) from None
        error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"
        if isinstance(exc, torch.OutOfMemoryError):  # never retried at a smaller batch: that breaks fairness
            error += (" (the batch size was not changed, since every contender must train alike: lower "
                      "protocol.batch_size for all, or give this run a larger device)")
        info.update(status=FAILED, error=error, traceback=traceback.format_exc())
    info["wall_time_s"] = time.perf_counter() - t_start
    info["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if cfg.tracking.mlflow is not None:
        try:
            from bakeoff.runs.tracking import log_run

            info["mlflow_run_id"] = log_run(cfg.tracking.mlflow, store.root, cfg.name, info, run_dir)
        except Exception as exc:  # noqa: BLE001 - tracking must never cost a finished run
            info["tracking_error"] = f"MLflow: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    store.write_run(run, info)
    if info["status"] == DONE:
        store.finish(run)
    return info
