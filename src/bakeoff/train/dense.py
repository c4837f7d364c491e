"""Training and inference for dense tasks (segmentation, particle picking) on large images.

Training draws random patches (uniform or class-balanced) for a fixed number of batches per epoch; the
sampler runs in the main process (seeded per run and advancing per epoch), the dataset reads each
batch's patches from disk lazily. Validation and the saved predictions use MONAI's sliding-window
inference on whole images, so every contender is judged on the same full images.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, Sampler

from bakeoff.config import ProtocolConfig
from bakeoff.data.segdata import SegData
from bakeoff.errors import BakeoffError
from bakeoff.tasks import Task
from bakeoff.train.module import BakeoffModule
from bakeoff.train.progress import Report


def patch_size_for(data: SegData, protocol: ProtocolConfig, idx: np.ndarray) -> tuple[int, ...]:
    """The training patch size: the protocol's, or the (common) image size when none is given."""
    if protocol.patch_size is not None:
        if len(protocol.patch_size) != data.spatial_dims:
            raise BakeoffError(f"protocol.patch_size: {protocol.patch_size} has {len(protocol.patch_size)} values; "
                               f"expected {data.spatial_dims} for {data.spatial_dims}D images")
        return tuple(int(s) for s in protocol.patch_size)
    shapes = {data.spatial_shape(int(i)) for i in idx}
    if len(shapes) > 1:
        raise BakeoffError(f"protocol.patch_size: the training images differ in size ({sorted(shapes)[:3]} ...); "
                           f"expected a patch size, e.g. patch_size: [256, 256]")
    return next(iter(shapes))


class PatchBatchSampler(Sampler):
    """Yields ``iterations`` batches per epoch; each batch is a list of (image index, start corner)."""

    def __init__(self, data: SegData, idx: np.ndarray, size: tuple[int, ...], batch_size: int, iterations: int,
                 balanced: bool, seed: int) -> None:
        self.data, self.idx, self.size = data, np.asarray(idx), size
        self.batch_size, self.iterations, self.balanced = batch_size, iterations, balanced
        self.seed = seed
        self.rng = np.random.default_rng([seed, 0])
        area = np.array([np.prod(data.spatial_shape(int(i))) for i in self.idx], dtype=float)
        self.p_image = area / area.sum()
        counts = data.class_pixels[self.idx]  # (n_train, K)
        self.classes = np.flatnonzero(counts.sum(0) > 0)
        self.p_class_image = counts / np.maximum(counts.sum(0, keepdims=True), 1)

    def __len__(self) -> int:
        return self.iterations

    def set_epoch(self, epoch: int) -> None:
        """Each epoch's patches are a function of (seed, epoch), so an interrupted run resumes exactly."""
        self.rng = np.random.default_rng([self.seed, epoch])

    def _start(self, i: int, centre: np.ndarray | None) -> tuple[int, ...]:
        shape = self.data.spatial_shape(i)
        out = []
        for ax, (n, s) in enumerate(zip(self.size, shape)):
            hi = max(s - n, 0)
            out.append(int(self.rng.integers(0, hi + 1)) if centre is None else int(np.clip(centre[ax] - n // 2, 0, hi)))
        return tuple(out)

    def __iter__(self):
        for _ in range(self.iterations):
            batch = []
            for _ in range(self.batch_size):
                if self.balanced:
                    k = int(self.rng.choice(self.classes))
                    j = int(self.rng.choice(len(self.idx), p=self.p_class_image[:, k]))
                    i = int(self.idx[j])
                    pts = self.data.coords[i][k]
                    batch.append((i, self._start(i, pts[self.rng.integers(len(pts))])))
                else:
                    i = int(self.idx[self.rng.choice(len(self.idx), p=self.p_image)])
                    batch.append((i, self._start(i, None)))
            yield batch


class PatchDataset(Dataset):
    """``ds[[(image, start), ...]]`` reads and stacks one batch of patches."""

    def __init__(self, data: SegData, size: tuple[int, ...]) -> None:
        self.data, self.size = data, size

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, batch: list[tuple[int, tuple[int, ...]]]):
        xs, ys = zip(*(self.data.patch(i, s, self.size) for i, s in batch))
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


class WholeImages(Dataset):
    """One whole normalised image (1, C, *spatial) and mask (1, *spatial) per item."""

    def __init__(self, data: SegData, idx: np.ndarray) -> None:
        self.data, self.idx = data, np.asarray(idx)

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, j: int):
        i = int(self.idx[j])
        return torch.from_numpy(self.data.image(i))[None], torch.from_numpy(self.data.mask(i))[None]


def joint_augment(names: list[str], x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flips and 90-degree rotations applied identically to images and masks, per sample."""
    n = x.shape[0]
    xb, yb = (n,) + (1,) * (x.ndim - 1), (n,) + (1,) * (y.ndim - 1)
    if "flip" in names:
        for dim in range(2, x.ndim):
            m = torch.rand(n, device=x.device) < 0.5
            x, y = torch.where(m.view(xb), x.flip(dim), x), torch.where(m.view(yb), y.flip(dim - 1), y)
    if "rot90" in names and x.shape[-1] == x.shape[-2]:
        k = torch.randint(0, 4, (n,), device=x.device)
        ox, oy = x, y
        for kk in (1, 2, 3):
            m = k == kk
            ox = torch.where(m.view(xb), torch.rot90(x, kk, dims=(-2, -1)), ox)
            oy = torch.where(m.view(yb), torch.rot90(y, kk, dims=(-2, -1)), oy)
        x, y = ox, oy
    return x, y


class DenseModule(BakeoffModule):
    """The shared module with per-pixel outputs: patches in training, sliding windows on whole images in
    validation; validation metrics come from the task (the same code that scores the saved predictions)."""

    def __init__(self, model: nn.Module, task: Task, loss_fn: nn.Module, protocol: ProtocolConfig,
                 roi_size: tuple[int, ...]) -> None:
        super().__init__(model, task, loss_fn, protocol, 0.5)
        self.roi_size = roi_size
        self._epoch_val: dict[str, list] | None = None
        # the selected epoch's validation predictions, as predict_images gives them (no second pass)
        self.selected_val: dict[str, list] | None = None
        self.needs_boundary = any(m.split("/", 1)[1].startswith(("mean_hd95", "mean_nsd", "hd95", "nsd"))
                                  for m in self._monitors())

    def _monitors(self) -> list[str]:
        p = self.protocol
        out = [p.select.monitor]
        if p.early_stopping is not None and p.early_stopping.monitor:
            out.append(p.early_stopping.monitor)
        return out

    def augments(self) -> bool:
        return bool(self.protocol.augment)

    def augment_batch(self, batch: Any) -> Any:
        if self.protocol.augment:
            x, y = batch
            return joint_augment(self.protocol.augment, x, y)
        return batch

    def training_step(self, batch: Any) -> torch.Tensor:
        x, y = batch
        loss = self.loss_fn(self.net(x), y)
        acc = self._train_acc
        acc["loss"].append(loss.detach() * len(y))
        acc["n"] += len(y)
        return loss

    def train_epoch_metrics(self) -> dict[str, float]:
        acc = self._train_acc
        metrics = {"train/loss": float(torch.stack(acc["loss"]).sum() / max(acc["n"], 1))} if acc["n"] else {}
        self._reset("train")
        return metrics

    def resume_state(self) -> dict[str, Any]:
        """The selected epoch's validation predictions, as tensors (the checkpoint loads ``weights_only``)."""
        sel = self.selected_val
        if sel is None:
            return {"selected_val": None}
        return {"selected_val": {k: [None if a is None else torch.from_numpy(np.ascontiguousarray(a)) for a in v]
                                 for k, v in sel.items()}}

    def load_resume_state(self, state: dict[str, Any]) -> None:
        sel = state.get("selected_val")
        self.selected_val = None if sel is None else {k: [None if t is None else t.numpy() for t in v]
                                                      for k, v in sel.items()}

    def sliding_window(self, x: torch.Tensor) -> torch.Tensor:
        from monai.inferers import sliding_window_inference

        p = self.protocol
        return sliding_window_inference(x, self.roi_size, max(1, p.batch_size), self.net,
                                        overlap=p.sliding_window_overlap, mode=p.sliding_window_mode)

    def validation_step(self, batch: Any) -> None:
        x, y = batch
        logits = self.sliding_window(x)
        acc = self._val_acc
        acc["loss"].append(self.loss_fn(logits, y).detach())
        acc["n"] += 1
        probs = self.task.probabilities(logits)
        acc["probs"].append(self.task.predicted_labels(logits, self.loss_fn))
        fg = self.task.foreground(probs)
        acc["y"].append((y[0].cpu().numpy(), None if fg is None else fg[0].float().cpu().numpy()))

    def val_epoch_metrics(self) -> dict[str, float]:
        acc = self._val_acc
        if acc["n"] == 0:
            return {}
        d = {"pred": acc["probs"], "y": [t for t, _ in acc["y"]], "prob": [f for _, f in acc["y"]]}
        self._epoch_val = {"pred": d["pred"], "prob": [None if f is None else f.astype(np.float16) for f in d["prob"]]}
        if d["prob"][0] is not None:
            d["centres"] = [_centres_of(t) for t in d["y"]]
        metrics, _ = self.task.evaluate_part(d, boundary=self.needs_boundary)
        out = {"val/loss": float(torch.stack(acc["loss"]).mean())}
        out.update({f"val/{k}": v for k, v in metrics.items() if not k.startswith("n_undefined")
                    and np.isfinite(v)})
        self._reset("val")
        return out

    @torch.inference_mode()
    def predict_images(self, data: SegData, idx: np.ndarray) -> dict[str, Any]:
        """Label maps (``Task.predicted_labels``) and, for picking, particle probabilities (float16) of whole
        images."""
        self.eval()
        preds, probs = [], []
        dtype = self.input_dtype()
        for j in range(len(idx)):
            x, _ = WholeImages(data, idx)[j]
            logits = self.sliding_window(x.to(self.device, dtype))
            p = self.task.probabilities(logits)
            preds.append(self.task.predicted_labels(logits, self.loss_fn))
            fg = self.task.foreground(p)
            probs.append(None if fg is None else fg[0].to(torch.float16).cpu().numpy())
        return {"pred": preds, "prob": probs}


def _centres_of(mask: np.ndarray) -> np.ndarray:
    from bakeoff.tasks.segmentation import mask_centres

    return mask_centres(mask)


def iterations_for(data: SegData, idx: np.ndarray, size: tuple[int, ...], protocol: ProtocolConfig) -> int:
    if protocol.iterations_per_epoch:
        return protocol.iterations_per_epoch
    pixels = sum(np.prod(data.spatial_shape(int(i))) for i in idx)
    return max(1, math.ceil(pixels / (np.prod(size) * protocol.batch_size)))


def fit_dense(task: Task, model: nn.Module, protocol: ProtocolConfig, data: SegData, train_idx: np.ndarray,
              val_idx: np.ndarray, *, run_dir, seed: int, report: Report | None = None,
              checkpoint_every_s: float | None = None):
    """Train a dense model on patches of ``train_idx``, select on whole ``val_idx`` images."""
    from bakeoff.losses import build_loss
    from bakeoff.train.loop import _loggers, make_fabric, run_fit

    if "rotate" in protocol.augment:
        raise BakeoffError("protocol.augment: 'rotate' is not available for segmentation (masks would need "
                           "nearest-neighbour resampling); expected flip and/or rot90")
    protocol = task.with_selection(protocol)
    counts = data.class_pixels[train_idx].sum(0)
    loss_fn = build_loss(protocol.loss, task, None, counts=counts)
    size = patch_size_for(data, protocol, train_idx)
    module = DenseModule(model, task, loss_fn, protocol, size)
    sampler = PatchBatchSampler(data, train_idx, size, protocol.batch_size, iterations_for(data, train_idx, size, protocol),
                                protocol.patch_sampling == "class_balanced", seed)
    fabric = make_fabric(protocol, _loggers(run_dir))  # one Fabric for the run
    pin = fabric.device.type == "cuda"  # pinned batches, copied without blocking
    train_loader = DataLoader(PatchDataset(data, size), sampler=sampler, batch_size=None, pin_memory=pin,
                              num_workers=protocol.num_workers, persistent_workers=protocol.num_workers > 0)
    val_loader = DataLoader(WholeImages(data, val_idx), batch_size=None, pin_memory=pin)
    every = {} if checkpoint_every_s is None else {"checkpoint_every_s": checkpoint_every_s}
    return run_fit(module, protocol, train_loader, val_loader, run_dir, report,
                   {"data_on_device": False, "pinned_memory": pin}, fabric=fabric, **every)
