"""One training: seeded model, loss from the training split, Lightning fit, best checkpoint restored."""

from __future__ import annotations

import os
import resource
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn as nn

from bakeoff.config import ProtocolConfig
from bakeoff.losses import build_loss
from bakeoff.tasks import Task
from bakeoff.train.data import make_loader
from bakeoff.train.module import BakeoffModule
from bakeoff.train.trainer import build_trainer

# Lightning's advice that is noise for small in-memory data.
for _pattern in (".*does not have many workers.*", ".*The number of training batches.*",
                 ".*Checkpoint directory .* exists and is not empty.*", ".*GPU available but not used.*",
                 ".*LeafSpec.*", ".*treespec.*"):
    warnings.filterwarnings("ignore", message=_pattern)


@dataclass
class FitResult:
    module: BakeoffModule
    best_path: str | None
    best_epoch: int | None
    best_score: float | None
    epochs_trained: int
    train_time_s: float
    peak_memory_mb: float
    peak_memory_kind: str


def seed_everything(seed: int, deterministic: bool = True) -> None:
    L.seed_everything(seed, workers=True, verbose=False)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def set_tf32(enabled: bool) -> None:
    """TensorFloat-32 for matmuls and cuDNN convolutions (Ampere+ GPUs); a no-op on CPU."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def peak_memory(cuda: bool) -> tuple[float, str]:
    if cuda:
        return torch.cuda.max_memory_allocated() / 2**20, "cuda_max_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process_max_rss"


def restore_best(module: L.LightningModule, ckpt) -> tuple[int | None, float | None]:
    """Load the selected epoch's weights back into ``module``; (epoch, score) or (None, None)."""
    if not ckpt.best_model_path:
        return None, None
    state = torch.load(ckpt.best_model_path, map_location=module.device, weights_only=True)
    module.load_state_dict(state["state_dict"])
    score = float(ckpt.best_model_score) if ckpt.best_model_score is not None else None
    return int(state["epoch"]) + 1, score


def fit(task: Task, model: nn.Module, protocol: ProtocolConfig, X_train: np.ndarray, y_train: np.ndarray,
        X_val: np.ndarray, y_val: np.ndarray, *, run_dir: Path | None, threshold: float = 0.5,
        report: Callable[[int, int, dict[str, float]], None] | None = None) -> FitResult:
    """Train ``model`` (already built under the run's seed) and restore the weights of the selected epoch."""
    loss_fn = build_loss(protocol.loss, task.default_loss, y_train, task.num_classes)
    module = BakeoffModule(model, task, loss_fn, protocol, threshold, report)
    train_loader = make_loader(X_train, y_train, protocol.batch_size, shuffle=True, num_workers=protocol.num_workers)
    val_loader = make_loader(X_val, y_val, max(protocol.batch_size, 256), shuffle=False)
    return run_fit(module, protocol, train_loader, val_loader, run_dir)


def run_fit(module: L.LightningModule, protocol: ProtocolConfig, train_loader, val_loader,
            run_dir: Path | None) -> FitResult:
    """Lightning's fit with bakeoff's trainer, timed and memory-measured; the selected weights restored."""
    trainer, ckpt = build_trainer(protocol, run_dir)
    cuda = torch.cuda.is_available() and protocol.accelerator in ("auto", "gpu", "cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trainer.fit(module, train_loader, val_loader)
    train_time = time.perf_counter() - t0
    peak, kind = peak_memory(cuda)
    best_epoch, best_score = restore_best(module, ckpt)
    return FitResult(module, ckpt.best_model_path or None, best_epoch, best_score, trainer.current_epoch,
                     train_time, peak, kind)
