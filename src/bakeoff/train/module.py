"""The LightningModule shared by every classification contender.

Per-step work is kept to the forward/backward pass: losses and predictions are accumulated on the device
and logged once per epoch (a scalar logged every step made a tiny model about 3x slower).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn as nn

from bakeoff.config import ProtocolConfig
from bakeoff.data.transforms import BatchAugment
from bakeoff.tasks import Task

Report = Callable[[int, int, dict[str, float]], None]


class BakeoffModule(L.LightningModule):
    def __init__(self, model: nn.Module, task: Task, loss_fn: nn.Module, protocol: ProtocolConfig,
                 threshold: float = 0.5, report: Report | None = None) -> None:
        super().__init__()
        self.report = report
        self.model = model
        self.task = task
        self.loss_fn = loss_fn
        self.protocol = protocol
        self.threshold = threshold
        self.augment = BatchAugment(protocol.augment, protocol.rotate_degrees)
        self.primary = protocol.select.monitor.split("/", 1)[1]
        self._reset("train")
        self._reset("val")
        self._grad_norms: list[torch.Tensor] = []

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets ``_current_fx_name`` around each of its ~40 hook calls per step; nn.Module's
        # __setattr__ (parameter/buffer/module checks) made that a measurable share of a tiny model's step.
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    # -- accumulation -------------------------------------------------------------------------------
    def _reset(self, part: str) -> None:
        setattr(self, f"_{part}_acc", {"loss": [], "n": 0, "probs": [], "y": []})

    def _accumulate(self, part: str, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        acc = getattr(self, f"_{part}_acc")
        acc["loss"].append(loss.detach() * len(y))
        acc["n"] += len(y)
        acc["probs"].append(self.task.probabilities(logits.detach()))
        acc["y"].append(y.detach())

    def _epoch_metrics(self, part: str, names: list[str] | None = None) -> dict[str, float]:
        acc = getattr(self, f"_{part}_acc")
        if acc["n"] == 0:
            return {}
        out = {f"{part}/loss": float(torch.stack(acc["loss"]).sum() / acc["n"])}
        probs = torch.cat(acc["probs"]).float().cpu().numpy()
        y = torch.cat(acc["y"]).cpu().numpy()
        if len(np.unique(y)) > 1:
            metrics = self.task.metrics(y, probs, self.threshold)
            for k, v in metrics.items():
                if names is None or k in names:
                    out[f"{part}/{k}"] = v
        self._reset(part)
        return out

    # -- Lightning hooks ----------------------------------------------------------------------------
    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if self.trainer is not None and self.trainer.training and self.augment:
            x, y = batch
            return self.augment(x), y
        return batch

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self.model(x)
        loss = self.loss_fn(logits, self.task.targets(y))
        self._accumulate("train", loss, logits, y)
        return loss

    def on_train_epoch_end(self) -> None:
        metrics = self._epoch_metrics("train", names=[self.primary])
        metrics.update(self._lr_and_grad_norm())
        self.log_dict(metrics, on_step=False, on_epoch=True)
        self._report()

    def _report(self) -> None:
        if self.report is not None:
            logged = {k: float(v) for k, v in self.trainer.callback_metrics.items() if v.numel() == 1}
            self.report(self.current_epoch + 1, self.trainer.max_epochs, logged)

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        # The total gradient norm (after AMP unscaling), sampled every 10th step to keep steps cheap.
        if self.protocol.log_grad_norm and self.global_step % 10 == 0:
            grads = [p.grad for p in self.model.parameters() if p.grad is not None]
            if grads:
                self._grad_norms.append(torch.nn.utils.get_total_norm(grads).detach())

    def _lr_and_grad_norm(self) -> dict[str, float]:
        out = {"lr": float(self.trainer.optimizers[0].param_groups[0]["lr"])}
        if self._grad_norms:
            out["grad_norm"] = float(torch.stack(self._grad_norms).float().mean())
            self._grad_norms = []
        return out

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        logits = self.model(x)
        self._accumulate("val", self.loss_fn(logits, self.task.targets(y)), logits, y)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self._reset("val")
            return
        self.log_dict(self._epoch_metrics("val"), on_step=False, on_epoch=True)

    def configure_optimizers(self) -> Any:
        from bakeoff.train.optim import build_optimizer, build_scheduler

        opt = build_optimizer(self.model.parameters(), self.protocol.optimizer)
        total = int(self.trainer.estimated_stepping_batches)
        sched = build_scheduler(opt, self.protocol.schedule, self.protocol.optimizer.lr, total,
                                self.protocol.epochs)
        return opt if sched is None else {"optimizer": opt, "lr_scheduler": sched}

    @torch.inference_mode()
    def predict_arrays(self, X: np.ndarray, batch_size: int) -> np.ndarray:
        """Probabilities for an array of inputs, in eval mode, on the module's device."""
        from bakeoff.train.data import make_loader

        self.eval()
        out = []
        for (xb,) in make_loader(X, None, batch_size, shuffle=False):
            out.append(self.task.probabilities(self.model(xb.to(self.device))).float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0,), dtype=np.float32)
