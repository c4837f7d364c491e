"""One training: seeded model, loss from the training split, bakeoff's loop, best weights restored."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn as nn

from bakeoff.config import ProtocolConfig
from bakeoff.losses import build_loss
from bakeoff.tasks import Task
from bakeoff.train import determinism
from bakeoff.train.data import ArrayBatches
from bakeoff.train.loop import FitResult, device_of, run_fit
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
        report: Callable[[int, int, dict[str, float]], None] | None = None) -> FitResult:
    """Train ``model`` (already built under the run's seed) and restore the weights of the selected epoch."""
    loss_fn = build_loss(protocol.loss, task.default_loss, y_train, task.num_classes)
    module = BakeoffModule(model, task, loss_fn, protocol, threshold)
    device = device_of(protocol)
    train = ArrayBatches(X_train, y_train, protocol.batch_size, shuffle=True, device=device)
    val = ArrayBatches(X_val, y_val, inference_batch(protocol), shuffle=False, device=device)
    data = {"data_on_device": train.on_device and val.on_device, "pinned_memory": train.pinned}
    return run_fit(module, protocol, train, val, run_dir, report, data)
