"""The cumulative-link (proportional-odds) ordinal head."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
from sklearn.metrics import cohen_kappa_score

from bakeoff.config import LossConfig
from bakeoff.losses import CumulativeLinkHead, build_loss
from bakeoff.tasks import get_task


def test_probabilities_are_valid_and_thresholds_ordered():
    torch.manual_seed(0)
    head = CumulativeLinkHead(nn.Linear(3, 1), 5)
    with torch.no_grad():
        head.gaps.copy_(torch.randn(3) * 3)
    out = head(torch.randn(16, 3))
    assert out.shape == (16, 5)
    assert torch.allclose(out.exp().sum(1), torch.ones(16), atol=1e-5)
    assert torch.all(torch.diff(head.thresholds()) > 0)
    # the model's definition: P(y > k) = sigmoid(s - theta_k)
    s = head.net(torch.ones(1, 3))
    p = head(torch.ones(1, 3)).exp()[0]
    assert torch.allclose(1 - torch.cumsum(p, 0)[:-1], torch.sigmoid(s[0, 0] - head.thresholds()), atol=1e-5)


def test_learns_an_ordinal_problem():
    rng = np.random.default_rng(0)
    grade = rng.integers(0, 5, 600)
    x = torch.tensor(np.stack([grade + rng.normal(0, 0.5, 600), rng.normal(size=600)], 1), dtype=torch.float32)
    y = torch.from_numpy(grade)
    torch.manual_seed(0)
    head = CumulativeLinkHead(nn.Linear(2, 1), 5)
    loss_fn = build_loss(LossConfig(name="cumulative_link"), get_task("ordinal_classification", 5), grade)
    opt = torch.optim.Adam(head.parameters(), 0.05)
    for _ in range(300):
        opt.zero_grad()
        loss_fn(head(x), y).backward()
        opt.step()
    pred = head(x).argmax(1).numpy()
    assert cohen_kappa_score(grade, pred, weights="quadratic") > 0.9
