"""Per-sample intensity normalisation and on-device batch augmentation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

EPS = 1e-8


def normalize_data(data: Any, method: str, in_memory: bool | None = None) -> None:
    """``data.normalize`` applied: to arrays in memory now; to image files (``LazyImages``) per batch, as
    read from the cache (``in_memory``: ``data.in_memory``, whether a part is read into memory whole)."""
    from bakeoff.data.cache import LazyImages

    if isinstance(data.X, LazyImages):
        data.X.method = method
        data.X._norm = None
        data.X.store.in_memory = in_memory
        return
    data.X = normalize(data.X, method)


def normalize(X: np.ndarray, method: str) -> np.ndarray:
    """Per-sample (over channels and space) min-max to [0, 1] or z-score. Per sample, so no leakage."""
    if method == "none":
        return X
    if method == "dataset":
        # per-channel mean and std over every image (label-free intensity statistics, computed once for
        # the whole dataset so that every split and contender sees identical inputs)
        axes = (0, *range(2, X.ndim))
        mu = X.mean(axis=axes, keepdims=True)
        sd = X.std(axis=axes, keepdims=True)
        return ((X - mu) / np.maximum(sd, EPS)).astype(np.float32)
    if method == "imagenet":
        from bakeoff.data.images import imagenet_normalize

        return imagenet_normalize(X)
    axes = tuple(range(1, X.ndim))
    if method == "minmax":
        lo = X.min(axis=axes, keepdims=True)
        hi = X.max(axis=axes, keepdims=True)
        return ((X - lo) / np.maximum(hi - lo, EPS)).astype(np.float32)
    if method == "zscore":
        mu = X.mean(axis=axes, keepdims=True)
        sd = X.std(axis=axes, keepdims=True)
        return ((X - mu) / np.maximum(sd, EPS)).astype(np.float32)
    raise ValueError(f"unknown normalisation {method!r}")


class BatchAugment:
    """Random flips, 90-degree rotations in the last two axes, and small in-plane rotations.

    Works on whole batches (N, C, *spatial) on the device, each sample drawing its own transform from
    torch's global generator (seeded per run), so it costs a few tensor ops per step.
    """

    def __init__(self, names: list[str], rotate_degrees: float = 15.0) -> None:
        self.names = list(names)
        self.rotate_degrees = rotate_degrees

    def __bool__(self) -> bool:
        return bool(self.names)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        spatial = list(range(2, x.ndim))
        n = x.shape[0]
        bshape = (n,) + (1,) * (x.ndim - 1)
        if "flip" in self.names:
            for dim in spatial:
                mask = torch.rand(n, device=x.device) < 0.5
                x = torch.where(mask.view(bshape), x.flip(dim), x)
        if "rot90" in self.names:
            h, w = x.shape[-2], x.shape[-1]
            ks = (1, 2, 3) if h == w else (2,)
            k = torch.randint(0, len(ks) + 1, (n,), device=x.device)
            out = x
            for i, kk in enumerate(ks, start=1):
                out = torch.where((k == i).view(bshape), torch.rot90(x, kk, dims=(-2, -1)), out)
            x = out
        if "rotate" in self.names and self.rotate_degrees > 0:
            x = self._rotate(x)
        return x

    def _rotate(self, x: torch.Tensor) -> torch.Tensor:
        """Rotate each sample by a random angle in the (y, x) plane (about the z axis in 3D)."""
        n = x.shape[0]
        theta = (torch.rand(n, device=x.device) * 2 - 1) * math.radians(self.rotate_degrees)
        c, s = torch.cos(theta), torch.sin(theta)
        dims = x.ndim - 2
        mat = torch.zeros(n, dims, dims + 1, device=x.device, dtype=x.dtype)
        # affine_grid's last two output coordinates are (y, x) for both 2D and 3D (coordinates are x, y[, z]).
        mat[:, 0, 0], mat[:, 0, 1], mat[:, 1, 0], mat[:, 1, 1] = c, -s, s, c
        if dims == 3:
            mat[:, 2, 2] = 1
        grid = F.affine_grid(mat, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
