"""In-memory loaders that fetch whole batches by index (no per-sample collate)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler


class _TensorBatches(Dataset):
    """``ds[list_of_indices]`` returns the stacked batch at once."""

    def __init__(self, X: np.ndarray, y: np.ndarray | None) -> None:
        self.X = torch.from_numpy(np.ascontiguousarray(X))
        self.y = None if y is None else torch.from_numpy(np.ascontiguousarray(y))

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, idx):
        if self.y is None:
            return (self.X[idx],)
        return self.X[idx], self.y[idx]


def make_loader(X: np.ndarray, y: np.ndarray | None, batch_size: int, *, shuffle: bool,
                num_workers: int = 0) -> DataLoader:
    """A loader over arrays; when shuffling, a final batch of one sample is dropped (BatchNorm needs two)."""
    ds = _TensorBatches(X, y)
    base = RandomSampler(ds) if shuffle else SequentialSampler(ds)
    drop_last = shuffle and len(ds) % batch_size == 1 and len(ds) > 1
    sampler = BatchSampler(base, batch_size, drop_last=drop_last)
    return DataLoader(ds, sampler=sampler, batch_size=None, num_workers=num_workers,
                      persistent_workers=num_workers > 0)
