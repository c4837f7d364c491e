"""Optimizers and learning-rate schedules named in the protocol."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from bakeoff.config import OptimizerConfig, ScheduleConfig


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: OptimizerConfig,
                    fused: bool | None = None) -> torch.optim.Optimizer:
    """``fused``: PyTorch's fused kernel (None: PyTorch's default, foreach on CUDA)."""
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, fused=fused)


def build_scheduler(opt: torch.optim.Optimizer, cfg: ScheduleConfig, lr: float, total_steps: int,
                    epochs: int) -> dict[str, Any] | None:
    """OneCycle steps every batch; cosine anneals once per epoch over the whole budget."""
    if cfg.name == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(total_steps, 1),
                                                    pct_start=cfg.pct_start)
        return {"scheduler": sched, "interval": "step"}
    if cfg.name == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1), eta_min=cfg.min_lr)
        return {"scheduler": sched, "interval": "epoch"}
    return None
