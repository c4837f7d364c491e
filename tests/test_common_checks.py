"""Common checks over the registries, in the manner of timm's tests over ``list_models()`` and
scikit-learn's estimator checks: every registered model builds in each dimensionality it declares and
gives the right output shape with gradients for every parameter; every registered loss is finite and
passes finite gradients on each kind of task it declares."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bakeoff.config import LossConfig
from bakeoff.losses import LOSSES, build_loss
from bakeoff.models import create_model
from bakeoff.models.registry import MODEL_INFO

MODEL_CASES = [(name, d) for name, info in MODEL_INFO.items() for d in info.dims]
LOSS_CASES = [(name, kind) for name, spec in LOSSES.items() for kind in spec.kinds]


@pytest.mark.parametrize(("name", "dims"), MODEL_CASES, ids=[f"{n}-{d}d" for n, d in MODEL_CASES])
def test_every_registered_model_builds_and_trains_in_its_dimensionalities(name, dims):
    info = MODEL_INFO[name]
    shape = (9, 11, 11) if name == "simple_cnn3d" else (16,) * dims
    torch.manual_seed(0)
    net = create_model(f"bakeoff:{name}", in_channels=2, num_outputs=3, spatial_dims=dims, input_shape=shape,
                       params=dict(info.small or {}))
    out = net(torch.randn(2, 2, *shape))
    assert tuple(out.shape) == ((2, 3, *shape) if info.dense else (2, 3))
    out.float().square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.isfinite().all())]
    assert not missing, missing[:5]


def _batch(kind: str):
    g = torch.Generator().manual_seed(0)
    if kind == "binary":
        return torch.randn(6, 1, generator=g), torch.tensor([0.0, 1.0] * 3), "bce", 2
    if kind == "multiclass":
        return torch.randn(6, 3, generator=g), torch.tensor([0, 1, 2] * 2), "ce", 3
    return torch.randn(2, 3, 8, 8, generator=g), torch.randint(0, 3, (2, 8, 8), generator=g), "ce", 3


@pytest.mark.parametrize(("name", "kind"), LOSS_CASES, ids=[f"{n}-{k}" for n, k in LOSS_CASES])
def test_every_registered_loss_is_finite_with_gradients_on_its_tasks(name, kind):
    logits, target, default, k = _batch(kind)
    for weighting in ("none", "balanced"):
        y = None if kind == "dense" else target.long().numpy()
        loss_fn = build_loss(LossConfig(name=name, class_weights=weighting), default, y, k,
                             counts=np.array([50.0, 30.0, 20.0][:k]) if kind == "dense" else None,
                             dense=kind == "dense")
        x = logits.clone().requires_grad_(True)
        value = loss_fn(x, target)
        assert value.ndim == 0 and torch.isfinite(value), (name, weighting, value)
        value.backward()
        assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
