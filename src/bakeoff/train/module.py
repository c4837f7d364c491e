"""The step logic shared by every classification contender (the loop itself is in ``loop.py``).

Per-step work is kept to the forward/backward pass: losses and predictions are accumulated on the device
and turned into metrics once per epoch (a scalar moved to the host every step made a tiny model ~3x slower).
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from bakeoff.config import ProtocolConfig
from bakeoff.data.transforms import BatchAugment
from bakeoff.tasks import Task

MIN_INFERENCE_BATCH = 256  # validation and prediction batches: at least this many samples (no gradients kept)


INFERENCE_BYTES = 64 << 20  # ... unless that many float32 inputs would take more than this (large images)


def inference_batch(protocol: ProtocolConfig, sample_shape: tuple[int, ...] | None = None) -> int:
    """Samples per validation / prediction batch: ``MIN_INFERENCE_BATCH`` (or the training batch if larger),
    fewer for inputs so large that the batch would take more than ``INFERENCE_BYTES`` as float32 (a batch of
    256 RGB 384-px images is 453 MB before the network's activations), never fewer than the training batch.
    Small inputs (every built-in dataset, 224-px RGB up to 111 a batch) are unaffected by the cap up to 256."""
    cap = MIN_INFERENCE_BATCH
    if sample_shape is not None:
        cap = min(cap, max(1, INFERENCE_BYTES // (4 * int(np.prod(sample_shape)))))
    return max(protocol.batch_size, cap)


class BakeoffModule(nn.Module):
    """A network with its task, loss and protocol: what one training step and one validation step do."""

    def __init__(self, model: nn.Module, task: Task, loss_fn: nn.Module, protocol: ProtocolConfig,
                 threshold: float = 0.5) -> None:
        super().__init__()
        self.model = model
        self.task = task
        self.loss_fn = loss_fn
        self.protocol = protocol
        self.threshold = threshold
        self.augment = BatchAugment(protocol.augment, protocol.rotate_degrees)
        self._mixed = protocol.precision.endswith("-mixed")
        self.primary = (protocol.select.monitor or "val/loss").split("/", 1)[1]  # (resolved by fit: Task.with_selection)
        self._reset("train")
        self._reset("val")
        # the validation predictions (probabilities, truth) of the last epoch and of the selected one: a run's
        # saved validation part is what the selected epoch predicted, not a second pass over the same images
        self._epoch_val: tuple[np.ndarray, np.ndarray] | None = None
        self.selected_val: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def device(self) -> torch.device:
        p = next(self.model.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def inference_context(self) -> contextlib.AbstractContextManager:
        """Predictions at the protocol's precision, as in validation (Fabric's autocast: fp16 AMP falls back
        to bf16 on CPU)."""
        p = self.protocol.precision
        if not p.endswith("-mixed"):
            return contextlib.nullcontext()
        dev = self.device.type
        return torch.autocast(dev, dtype=torch.float16 if p == "16-mixed" and dev == "cuda" else torch.bfloat16)

    def net(self, x: torch.Tensor) -> torch.Tensor:
        """The network's output as in training: at the protocol's precision, returned in float32 (what
        Fabric's module wrapper does while training; applied here when the network is unwrapped). Called at
        every step: plain attribute reads and no context manager where the precision needs none (each
        ``nn.Module`` attribute lookup or failed ``hasattr`` is a microsecond or more of Python)."""
        model = self._modules["model"]
        if "_forward_module" in model._modules:  # Fabric's wrapper (its network is a submodule): precision there
            return model(x)
        if self._mixed:
            with self.inference_context():
                out = model(x)
        else:
            out = model(x)
        default = torch.get_default_dtype()
        return out.to(default) if out.is_floating_point() and out.dtype != default else out

    def input_dtype(self) -> torch.dtype | None:
        p = next(self.model.parameters(), None)
        return p.dtype if p is not None and p.is_floating_point() else None

    def resume_state(self) -> dict[str, Any]:
        """What the module must carry across an interruption besides the network (see ``train.resume``): the
        selected epoch's validation predictions, as tensors (the checkpoint loads ``weights_only``)."""
        if self.selected_val is None:
            return {"selected_val": None}
        return {"selected_val": [torch.from_numpy(np.ascontiguousarray(a)) for a in self.selected_val]}

    def load_resume_state(self, state: dict[str, Any]) -> None:
        sel = state.get("selected_val")
        self.selected_val = None if sel is None else (sel[0].numpy(), sel[1].numpy())

    def on_selected(self) -> None:
        """Called by the loop when this epoch becomes the selected one."""
        self.selected_val = self._epoch_val

    # -- accumulation -------------------------------------------------------------------------------
    def _reset(self, part: str) -> None:
        # "probs": what a subclass keeps per validation image instead of logits (DenseModule: label maps)
        setattr(self, f"_{part}_acc", {"loss": [], "sizes": [], "n": 0, "logits": [], "probs": [], "y": []})

    def _accumulate(self, part: str, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        """Kept as they come (no tensor op per step: on a small network each one is ~1 % of the step); the
        loss is weighted by the batch size and the logits turned into probabilities once, at the epoch's end
        (the same numbers: both are per sample). The targets never carry gradients: kept as they are."""
        acc = self._train_acc if part == "train" else self._val_acc
        n = y.shape[0]
        acc["loss"].append(loss.detach())
        acc["sizes"].append(n)
        acc["n"] += n
        acc["logits"].append(logits.detach())
        acc["y"].append(y)

    def _epoch_metrics(self, part: str, names: list[str] | None = None) -> dict[str, float]:
        acc = getattr(self, f"_{part}_acc")
        if acc["n"] == 0:
            return {}
        losses = torch.stack(acc["loss"])
        sizes = torch.tensor(acc["sizes"], dtype=losses.dtype, device=losses.device)
        out = {f"{part}/loss": float((losses * sizes).sum() / acc["n"])}
        probs = self.task.probabilities(torch.cat(acc["logits"])).float().cpu().numpy()
        y = torch.cat(acc["y"]).cpu().numpy()
        if part == "val":
            self._epoch_val = (probs, y)
        if len(np.unique(y)) > 1:
            out.update({f"{part}/{k}": v for k, v in self.task.metrics(y, probs, self.threshold, names=names).items()})
        self._reset(part)
        return out

    # -- steps (called by the loop) -----------------------------------------------------------------
    def augments(self) -> bool:
        """Whether ``augment_batch`` changes batches (the loop skips the call otherwise)."""
        return bool(self.augment)

    def augment_batch(self, batch: Any) -> Any:
        """Training-time augmentation on the device, per sample."""
        if self.augment:
            x, y = batch
            return self.augment(x), y
        return batch

    def training_step(self, batch: Any) -> torch.Tensor:
        x, y = batch
        logits = self.net(x)
        loss = self.loss_fn(logits, self.task.targets(y))
        self._accumulate("train", loss, logits, y)
        return loss

    def train_epoch_metrics(self) -> dict[str, float]:
        return self._epoch_metrics("train", names=[self.primary])

    def validation_step(self, batch: Any) -> None:
        x, y = batch
        logits = self.net(x)
        self._accumulate("val", self.loss_fn(logits, self.task.targets(y)), logits, y)

    def val_epoch_metrics(self) -> dict[str, float]:
        return self._epoch_metrics("val")

    @torch.inference_mode()
    def predict_arrays(self, X: np.ndarray, batch_size: int) -> np.ndarray:
        """Probabilities for an array of inputs, in eval mode, on the module's device."""
        self.eval()
        device, dtype = self.device, self.input_dtype()
        out = []
        for i in range(0, len(X), batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(X[i:i + batch_size])).to(device, dtype)
            out.append(self.task.probabilities(self.net(xb)).float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0,), dtype=np.float32)
