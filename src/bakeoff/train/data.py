"""In-memory batches: whole batches sliced by index, on the device when the arrays fit there.

What the fastest hand-written loop does (a shuffled index tensor slicing preloaded tensors), with the
order a function of (seed, epoch) alone, so that a run's batches never depend on what else consumed the
global random generator (and a resumed run can draw the same order).
"""

from __future__ import annotations

import numpy as np
import torch

# Arrays are moved to the GPU once when they take at most this share of its free memory.
DEVICE_SHARE = 0.25


def fits_on_device(nbytes: int, device: torch.device) -> bool:
    if device.type == "cpu":
        return True  # host memory is the device's
    if device.type != "cuda":
        return False
    free, _total = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_SHARE * free


class ArrayBatches:
    """Iterates ``(x, y)`` (or ``(x,)``) batches over arrays, already on ``device``.

    On CUDA the arrays are copied to the GPU once when they fit (``on_device``) and batches are indexed
    there; otherwise each batch is gathered into pinned host memory and copied without blocking (what
    ``DataLoader(pin_memory=True)`` does).
    When shuffling, a final batch of one sample is dropped (BatchNorm needs two).
    """

    def __init__(self, X: np.ndarray, y: np.ndarray | None, batch_size: int, *, shuffle: bool,
                 seed: int | None = None, device: torch.device | str = "cpu",
                 shard: tuple[int, int] = (0, 1)) -> None:
        """``shard`` (rank, world size): each global batch of ``batch_size`` is split across the processes
        of a multi-device run, this one taking its part (the batch size stays the global one)."""
        self.device = torch.device(device)
        self.rank, self.world = shard
        X_t = torch.from_numpy(np.ascontiguousarray(X))
        y_t = None if y is None else torch.from_numpy(np.ascontiguousarray(y))
        nbytes = X_t.nbytes + (0 if y_t is None else y_t.nbytes)
        self.on_device = fits_on_device(nbytes, self.device)
        self.pinned = self.device.type == "cuda" and not self.on_device
        self.X = X_t.to(self.device) if self.on_device else X_t
        self.y = None if y_t is None else (y_t.to(self.device) if self.on_device else y_t)
        self.n, self.batch_size, self.shuffle = len(X_t), batch_size, shuffle
        # the base of every epoch's order; drawn from the (seeded) global generator when not given
        self.seed = int(torch.randint(0, 2**31 - 1, (1,)).item()) if seed is None else int(seed)
        self.epoch = 0
        self.drop_last = shuffle and self.n % batch_size == 1 and self.n > 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.n)
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        return torch.randperm(self.n, generator=g)

    def __iter__(self):
        order = self.order(self.epoch)
        if self.on_device:
            order = order.to(self.device)
        stop = len(self) * self.batch_size
        for i in range(0, min(stop, self.n), self.batch_size):
            idx = order[i:i + self.batch_size]
            if self.world > 1:
                idx = idx.tensor_split(self.world)[self.rank]
                xb = self.X[idx]
                yb = None if self.y is None else self.y[idx]
            elif not self.shuffle:
                xb = self.X[i:i + self.batch_size]
                yb = None if self.y is None else self.y[i:i + self.batch_size]
            else:
                xb = self.X[idx]
                yb = None if self.y is None else self.y[idx]
            if self.pinned:
                xb = xb.pin_memory().to(self.device, non_blocking=True)
                yb = None if yb is None else yb.pin_memory().to(self.device, non_blocking=True)
            elif not self.on_device and self.device.type != "cpu":
                xb = xb.to(self.device)
                yb = None if yb is None else yb.to(self.device)
            yield (xb,) if yb is None else (xb, yb)
