"""Losses and class weighting, in a registry (``register_loss``) like the models'. Segmentation losses
come from MONAI; only Balanced Softmax Tversky, which MONAI lacks, is written here. Each loss's settings
are its factory's keyword-only parameters, given as ``loss: {name: ..., params: {...}}``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight

from bakeoff.catalog import KIND_WORDS
from bakeoff.config import LossConfig
from bakeoff.errors import BakeoffError


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
        logits = logits.reshape(logits.shape[0], -1)[:, 0]
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


# -- the loss registry ---------------------------------------------------------------------------------
# Which task a loss fits: "binary" (one logit), "multiclass" (K logits: multi-class and ordinal), "dense"
# (per-pixel logits). A user's own loss is a factory named ``package.module:callable`` in the study file;
# it receives the keywords below that it accepts (``num_classes``, ``weights``, ``counts``, ``dense``)
# and its ``params``, and returns an ``nn.Module`` called as ``loss(logits, target)``.
KINDS = ("binary", "multiclass", "dense")


@dataclass
class LossContext:
    """What a loss factory may use: the task's size and the training split's class statistics."""

    num_classes: int
    weights: torch.Tensor | None  # the protocol's class weights (None: unweighted)
    counts: np.ndarray  # training samples (or pixels) per class
    dense: bool


@dataclass
class LossSpec:
    name: str
    factory: Callable[..., nn.Module]
    kinds: tuple[str, ...]

    @property
    def params(self) -> dict[str, Any]:
        sig = inspect.signature(self.factory)
        return {k: p.default for k, p in list(sig.parameters.items())[1:] if p.kind is p.KEYWORD_ONLY}


LOSSES: dict[str, LossSpec] = {}


def register_loss(name: str, kinds: tuple[str, ...]) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register ``fn(ctx: LossContext, *, params...) -> nn.Module`` under ``name``."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        LOSSES[name] = LossSpec(name, fn, kinds)
        return fn

    return wrap


@register_loss("bce", ("binary",))
def _bce(ctx: LossContext) -> nn.Module:
    return WeightedBCE(None if ctx.weights is None else ctx.weights.numpy())


@register_loss("ce", ("multiclass", "dense"))
def _ce(ctx: LossContext) -> nn.Module:
    return nn.CrossEntropyLoss(weight=ctx.weights)


@register_loss("cumulative_link", ("multiclass",))
def _cumulative_link(ctx: LossContext) -> nn.Module:
    return nn.CrossEntropyLoss(weight=ctx.weights)  # the ordinal head returns log class probabilities


@register_loss("focal", ("dense",))
def _focal(ctx: LossContext, *, gamma: float = 2.0) -> nn.Module:
    from monai.losses import FocalLoss

    return ChannelTarget(FocalLoss(include_background=True, to_onehot_y=True, use_softmax=True, gamma=gamma,
                                   weight=ctx.weights))


@register_loss("dice", ("dense",))
def _dice(ctx: LossContext, *, include_background: bool = True) -> nn.Module:
    from monai.losses import DiceLoss

    return ChannelTarget(DiceLoss(include_background=include_background, to_onehot_y=True, softmax=True))


@register_loss("dice_ce", ("dense",))
def _dice_ce(ctx: LossContext, *, include_background: bool = True, lambda_ce: float = 1.0) -> nn.Module:
    from monai.losses import DiceCELoss

    return ChannelTarget(DiceCELoss(include_background=include_background, to_onehot_y=True, softmax=True,
                                    weight=ctx.weights, lambda_ce=lambda_ce))


@register_loss("focal_dice", ("dense",))
def _focal_dice(ctx: LossContext, *, include_background: bool = True, gamma: float = 2.0,
                lambda_focal: float = 1.0) -> nn.Module:
    from monai.losses import DiceFocalLoss

    return ChannelTarget(DiceFocalLoss(include_background=include_background, to_onehot_y=True, softmax=True,
                                       gamma=gamma, weight=ctx.weights, lambda_focal=lambda_focal))


@register_loss("tversky", ("dense",))
def _tversky(ctx: LossContext, *, include_background: bool = True, alpha: float = 0.5,
             beta: float = 0.5) -> nn.Module:
    from monai.losses import TverskyLoss

    return ChannelTarget(TverskyLoss(include_background=include_background, to_onehot_y=True, softmax=True,
                                     alpha=alpha, beta=beta))


@register_loss("balanced_softmax_tversky", ("dense",))
def _balanced_softmax_tversky(ctx: LossContext, *, tau: float = 1.0, alpha: float = 0.5, beta: float = 0.5,
                              include_background: bool = True) -> nn.Module:
    prior = np.asarray(ctx.counts, dtype=np.float64) / np.sum(ctx.counts)
    return BalancedSoftmaxTversky(prior, tau, alpha, beta, include_background)


def losses_for(kind: str, own: dict[str, Any] | None = None) -> list[str]:
    return [n for n, spec in LOSSES.items() if kind in spec.kinds] + list(own or {})


def build_loss(cfg: LossConfig, task: Any, y_train: np.ndarray | None, counts: np.ndarray | None = None) -> nn.Module:
    """The loss a run of ``task`` trains with: one of the registry's losses for the task's ``loss_kind``, one
    the task brings itself (``task.own_losses``: name -> factory, as registered ones), or a user's
    ``package.module:callable``; ``counts`` are the training split's per-class pixel counts (dense)."""
    from bakeoff.components import call_checked, import_callable

    default, kind, num_classes, own = task.default_loss, task.loss_kind, task.num_classes, dict(task.own_losses)
    dense = bool(task.dense)  # per-pixel targets: the task says so (Task.dense), not a kind's name
    name = cfg.name or default
    classes = y_train is not None and np.issubdtype(np.asarray(y_train).dtype, np.integer)
    weights = class_weights(cfg.class_weights, y_train, num_classes, counts, cfg.effective_beta) \
        if classes or counts is not None or isinstance(cfg.class_weights, list) else None
    if weights is None and cfg.class_weights != "none" and not classes and counts is None:
        raise BakeoffError(f"protocol.loss.class_weights: {cfg.class_weights!r} weights classes, and this study's "
                           f"targets are not classes; expected none")
    w = None if weights is None else torch.as_tensor(weights, dtype=torch.float32)
    if counts is None:
        counts = np.bincount(np.asarray(y_train, dtype=np.int64), minlength=num_classes) if classes \
            else np.ones(num_classes)
    ctx = LossContext(num_classes, w, np.asarray(counts), dense)
    label = f"protocol.loss ({name})"
    if ":" in name:
        fn = import_callable(name, "protocol.loss.name")
        loss = call_checked(fn, {"num_classes": num_classes, "weights": w, "counts": ctx.counts, "dense": dense},
                            cfg.params, label)
        if not isinstance(loss, nn.Module):
            raise BakeoffError(f"protocol.loss.name: {name} returned {type(loss).__name__}; expected a torch.nn.Module")
        return loss
    spec = LossSpec(name, own[name], (kind,)) if name in own else LOSSES.get(name)
    if spec is None:
        import difflib

        close = difflib.get_close_matches(name, [*LOSSES, *own], n=1)
        raise BakeoffError(f"protocol.loss.name: unknown loss {name!r}" + (f" (did you mean {close[0]!r}?)" if close
                           else "") + f"; expected one of {losses_for(kind, own)} or package.module:callable")
    if kind not in spec.kinds:
        raise BakeoffError(f"protocol.loss.name: {name} is for {' or '.join(KIND_WORDS.get(k, k) for k in spec.kinds)}; "
                           f"this study is {KIND_WORDS.get(kind, kind)}: expected one of {losses_for(kind, own)}")
    return call_checked(lambda **kw: spec.factory(ctx, **kw), {}, cfg.params, label, signature_of=spec.factory)
