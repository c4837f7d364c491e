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
