"""Batches: whole batches sliced by index, on the device when the arrays fit there.

What the fastest hand-written loop does (a shuffled index tensor slicing preloaded tensors), with the
order a function of (seed, epoch) alone, so that a run's batches never depend on what else consumed the
global random generator (and a resumed run can draw the same order).

Image files (``LazyImages``) arrive in their stored dtype (uint8 for 8-bit images) and are normalised per
batch on the device. Data small enough (``LazyImages.in_memory``) are read into memory whole, as an
array would be; larger ones are streamed: a background thread reads the next batches from the cache
(``PREFETCH`` ahead) while the current one trains, so memory holds a few batches, not the data. Both
paths draw the same order and normalise with the same function, so a study gives the same numbers
whichever it took.
"""

from __future__ import annotations

import queue
import threading

import numpy as np
import torch

from bakeoff.data.cache import PREFETCH, LazyImages

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
        self.norm = None  # per-batch normalisation (image files, stored dtype)
        self.stream: LazyImages | None = None  # image files read batch by batch from the cache
        self.n, self.batch_size, self.shuffle = len(X), batch_size, shuffle
        # the base of every epoch's order; drawn from the (seeded) global generator when not given
        self.seed = int(torch.randint(0, 2**31 - 1, (1,)).item()) if seed is None else int(seed)
        self.epoch = 0
        self.drop_last = shuffle and self.n % batch_size == 1 and self.n > 1
        if isinstance(X, LazyImages):
            self.norm = X.norm
            if not X.in_memory():
                self.stream, self.X = X, None
                self.y = None if y is None else torch.from_numpy(np.ascontiguousarray(y))
                self.on_device, self.pinned = False, self.device.type == "cuda"
                return
            X = X.raw()
        X_t = torch.from_numpy(np.ascontiguousarray(X))
        y_t = None if y is None else torch.from_numpy(np.ascontiguousarray(y))
        nbytes = X_t.nbytes + (0 if y_t is None else y_t.nbytes)
        self.on_device = fits_on_device(nbytes, self.device)
        self.pinned = self.device.type == "cuda" and not self.on_device
        self.X = X_t.to(self.device) if self.on_device else X_t
        self.y = None if y_t is None else (y_t.to(self.device) if self.on_device else y_t)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.n)
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        return torch.randperm(self.n, generator=g)

    def _positions(self) -> list[torch.Tensor]:
        """Each batch's sample positions, in this epoch's order (this process's share of each)."""
        order = self.order(self.epoch)
        stop = min(len(self) * self.batch_size, self.n)
        out = []
        for i in range(0, stop, self.batch_size):
            idx = order[i:i + self.batch_size]
            out.append(idx.tensor_split(self.world)[self.rank] if self.world > 1 else idx)
        return out

    def _streamed(self):
        """Batches read from the cache by a background thread, ``PREFETCH`` ahead of the step."""
        assert self.stream is not None
        batches = self._positions()
        ready: queue.Queue = queue.Queue(maxsize=PREFETCH)
        stop = threading.Event()
        store, where = self.stream.store, self.stream.idx

        def read() -> None:
            try:
                for idx in batches:
                    if stop.is_set():
                        return
                    x = torch.from_numpy(store.read(where[idx.numpy()]))
                    ready.put(x.pin_memory() if self.pinned else x)
                ready.put(None)
            except BaseException as exc:  # noqa: BLE001 - raised again in the training thread
                ready.put(exc)

        worker = threading.Thread(target=read, name="bakeoff-batches", daemon=True)
        worker.start()
        try:
            for idx in batches:
                xb = ready.get()
                if isinstance(xb, BaseException):
                    raise xb
                xb = self.norm(xb.to(self.device, non_blocking=self.pinned))
                if self.y is None:
                    yield (xb,)
                else:
                    yb = self.y[idx]
                    yield (xb, yb.pin_memory().to(self.device, non_blocking=True) if self.pinned else yb.to(self.device))
        finally:
            stop.set()
            while worker.is_alive():  # unblock a reader waiting on a full queue, then let it end
                try:
                    ready.get_nowait()
                except queue.Empty:
                    worker.join(0.05)

    def __iter__(self):
        if self.stream is not None:
            return self._streamed()
        if self.norm is not None:
            return self._normalised()
        return self._arrays()  # (no generator layer added on the plain in-memory path: it is the hot one)

    def _normalised(self):
        norm = self.norm
        for batch in self._arrays():
            yield (norm(batch[0]),) + tuple(batch[1:])

    def _arrays(self):
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
