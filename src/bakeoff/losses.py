"""Losses and class weighting. Segmentation losses come from MONAI; only Balanced Softmax Tversky,
which MONAI lacks, is written here."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight

from bakeoff.config import LossConfig
from bakeoff.errors import BakeoffError

DENSE_LOSSES = ("focal", "dice", "dice_ce", "focal_dice", "tversky", "balanced_softmax_tversky")


def class_weights(spec: str | list[float], y_train: np.ndarray | None, num_classes: int,
                  counts: np.ndarray | None = None, beta: float = 0.999) -> np.ndarray | None:
    """Class weights from the training split only: from labels ``y_train`` or from per-class ``counts``
    (pixels, for segmentation). ``balanced`` is scikit-learn's n / (K n_c); the others are rescaled to
    mean 1 over the classes present. A class with no training samples gets weight 0."""
    if isinstance(spec, list):
        if len(spec) != num_classes:
            raise BakeoffError(f"protocol.loss.class_weights: got {len(spec)} weights; expected {num_classes}")
        return np.asarray(spec, dtype=np.float64)
    if spec == "none":
        return None
    if counts is None:
        counts = np.bincount(np.asarray(y_train, dtype=np.int64), minlength=num_classes)
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    if spec == "balanced" and y_train is not None and present.all():
        return compute_class_weight("balanced", classes=np.arange(num_classes), y=y_train)
    freq = counts / counts.sum()
    w = np.zeros(num_classes)
    if spec == "balanced":
        w[present] = counts.sum() / (num_classes * counts[present])
        return w
    if spec == "inverse_frequency":
        w[present] = 1 / freq[present]
    elif spec == "inverse_sqrt_frequency":
        w[present] = 1 / np.sqrt(freq[present])
    elif spec == "effective_number":  # Cui et al. 2019, "Class-Balanced Loss Based on Effective Number of Samples"
        w[present] = (1 - beta) / (1 - beta ** counts[present])
    else:
        raise BakeoffError(f"protocol.loss.class_weights: unknown weighting {spec!r}")
    return w / w[present].mean()


class WeightedBCE(nn.Module):
    """Binary cross-entropy on one logit, each sample weighted by its class weight."""

    def __init__(self, weights: np.ndarray | None = None) -> None:
        super().__init__()
        w = torch.ones(2) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        self.register_buffer("weights", w)
        self.weighted = weights is not None

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.reshape(len(logits), -1)[:, 0]
        if not self.weighted:
            return F.binary_cross_entropy_with_logits(logits, target)
        w = self.weights[target.long()]
        return F.binary_cross_entropy_with_logits(logits, target, weight=w, reduction="sum") / w.sum()


class ChannelTarget(nn.Module):
    """Adapts a MONAI loss (targets (N, 1, *spatial)) to label maps (N, *spatial)."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss(logits.float(), target.unsqueeze(1))


class BalancedSoftmaxTversky(nn.Module):
    """Tversky loss on softmax(logits + tau * log prior): the Balanced Softmax logit adjustment (Ren et
    al. 2020) followed by MONAI's TverskyLoss. MONAI has no balanced softmax, hence this class."""

    def __init__(self, prior: np.ndarray, tau: float, alpha: float, beta: float, include_background: bool) -> None:
        super().__init__()
        from monai.losses import TverskyLoss

        log_prior = np.log(np.clip(np.asarray(prior, dtype=np.float64), 1e-12, None))
        self.register_buffer("shift", torch.as_tensor(tau * log_prior, dtype=torch.float32))
        self.tversky = TverskyLoss(include_background=include_background, to_onehot_y=True, softmax=True,
                                   alpha=alpha, beta=beta)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (logits.ndim - 2)
        return self.tversky(logits.float() + self.shift.view(shape), target.unsqueeze(1))


class CumulativeLinkHead(nn.Module):
    """Proportional-odds ordinal head: the wrapped network gives one score s per sample, learned
    thresholds theta_1 < ... < theta_{K-1} (cumulative softplus, so always ordered) give
    P(y > k) = sigmoid(s - theta_k), and the head returns log P(y = k) for k = 0..K-1. Those act as
    logits everywhere (softmax(log p) = p), so cross-entropy on them is the model's negative
    log-likelihood. Written here: neither MONAI nor timm ships an ordinal head."""

    def __init__(self, net: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.net = net
        self.first = nn.Parameter(torch.tensor(-(num_classes - 2) / 2.0))
        self.gaps = nn.Parameter(torch.zeros(max(num_classes - 2, 0)))

    def thresholds(self) -> torch.Tensor:
        return torch.cat([self.first.view(1), self.first + torch.cumsum(F.softplus(self.gaps) + 1e-3, 0)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.net(x).reshape(len(x), -1)[:, :1].float()
        above = torch.sigmoid(s - self.thresholds()[None])  # (N, K-1): P(y > k)
        ones, zeros = torch.ones_like(above[:, :1]), torch.zeros_like(above[:, :1])
        cum = torch.cat([ones, above, zeros], 1)
        return torch.log((cum[:, :-1] - cum[:, 1:]).clamp_min(1e-7))


def build_loss(cfg: LossConfig, default: str, y_train: np.ndarray | None, num_classes: int,
               counts: np.ndarray | None = None, dense: bool = False) -> nn.Module:
    """The loss a run trains with; ``counts`` are the training split's per-class pixel counts (dense)."""
    name = cfg.name or default
    weights = class_weights(cfg.class_weights, y_train, num_classes, counts, cfg.effective_beta)
    w = None if weights is None else torch.as_tensor(weights, dtype=torch.float32)
    if name == "bce":
        if num_classes != 2 or dense:
            raise BakeoffError(f"protocol.loss.name: bce needs a binary task; got {num_classes} classes "
                               f"({'segmentation' if dense else 'classification'}); use ce")
        return WeightedBCE(weights)
    if name == "cumulative_link":  # the head returns log class probabilities: CE is its likelihood
        return nn.CrossEntropyLoss(weight=w)
    if name == "ce":
        if num_classes == 2 and default == "bce":
            raise BakeoffError("protocol.loss.name: ce needs K outputs; binary_classification has one logit: use bce")
        return nn.CrossEntropyLoss(weight=w)
    if name in DENSE_LOSSES and not dense:
        raise BakeoffError(f"protocol.loss.name: {name} is a segmentation loss; expected bce or ce for classification")
    if name in DENSE_LOSSES:
        from monai import losses as ml

        common = dict(include_background=cfg.include_background, to_onehot_y=True, softmax=True)
        if name == "focal":
            return ChannelTarget(ml.FocalLoss(include_background=True, to_onehot_y=True, use_softmax=True,
                                              gamma=cfg.gamma, weight=w))
        if name == "dice":
            return ChannelTarget(ml.DiceLoss(**common))
        if name == "dice_ce":
            return ChannelTarget(ml.DiceCELoss(**common, weight=w, lambda_ce=cfg.lambda_ce))
        if name == "focal_dice":
            return ChannelTarget(ml.DiceFocalLoss(**common, gamma=cfg.gamma, weight=w, lambda_focal=cfg.lambda_ce))
        if name == "tversky":
            return ChannelTarget(ml.TverskyLoss(**common, alpha=cfg.alpha, beta=cfg.beta))
        if counts is None:
            counts = np.bincount(np.asarray(y_train, dtype=np.int64), minlength=num_classes)
        prior = np.asarray(counts, dtype=np.float64) / np.sum(counts)
        return BalancedSoftmaxTversky(prior, cfg.tau, cfg.alpha, cfg.beta, cfg.include_background)
    raise BakeoffError(f"protocol.loss.name: unknown loss {name!r}")
