"""A network that runs out of device memory on its first training step (as a too-large batch would)."""

import torch


class Greedy(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return self.lin(x.reshape(len(x), -1)[:, :1])


def greedy(**_: object) -> torch.nn.Module:
    return Greedy()


def broken(**_: object) -> torch.nn.Module:
    """A user's model factory that fails while building (a bad layer configuration)."""
    raise ValueError("depth must be at least 1, got 0")
