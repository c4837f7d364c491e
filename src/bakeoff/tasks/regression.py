"""Regression: one number per image (a spot count, an intensity, a size), predicted by one network output.

Everything regression needs lives here: the task (one output, the prediction itself saved as ``probs``,
no classes, unstratified splits), its losses (MSE and Huber, from ``torch.nn``), its metrics through the
``Metric`` protocol (MAE, RMSE, R², Pearson and Spearman correlation, each vectorised over replicate
weights so that intervals, verdicts and the jackknife of ``bakeoff.stats.design`` use them like any other
metric; tests check each against scikit-learn and scipy) and a built-in data set
(``builtin:spot_counts``: count the spots in a 2D field). A study's own data: ``npz:`` with a float ``y``,
or ``csv:`` whose ``label`` column holds each image's number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bakeoff.data.sources import first_sentence, generator_loader, register_source
from bakeoff.errors import BakeoffError
from bakeoff.tasks.base import Task, refuse_dense_settings, register_task
from bakeoff.tasks.metric import Metric, register

if TYPE_CHECKING:
    import torch

NAME = "regression"


# -- metrics: compute(table, W) for unit weights W (B, n); table = (truth, prediction) ------------------------
def _table(part: dict[str, Any], task: Any, threshold: float) -> Any:
    return np.asarray(part["y"], dtype=np.float64), np.asarray(part["probs"], dtype=np.float64).reshape(-1)


def _mean(W: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (W @ v) / W.sum(1)


def mae(t: Any, W: np.ndarray) -> np.ndarray:
    y, p = t
    return _mean(W, np.abs(p - y))


def rmse(t: Any, W: np.ndarray) -> np.ndarray:
    y, p = t
    return np.sqrt(_mean(W, (p - y) ** 2))


def r2(t: Any, W: np.ndarray) -> np.ndarray:
    """1 - SSE / SST around the (weighted) mean of the truth; NaN where the truth does not vary."""
    y, p = t
    sse = W @ (p - y) ** 2
    sst = W @ y ** 2 - (W @ y) ** 2 / W.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sst > 1e-12 * np.maximum(W @ y ** 2, 1e-300), 1 - sse / sst, np.nan)


def _pearson(W: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Weighted Pearson correlation per row of W (a, b: (n,) or (B, n))."""
    s = W.sum(1)
    ma, mb = (W * a).sum(1) / s, (W * b).sum(1) / s
    da, db = a - ma[:, None], b - mb[:, None]
    cov = (W * da * db).sum(1)
    var = (W * da ** 2).sum(1) * (W * db ** 2).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(var > 0, cov / np.sqrt(np.where(var > 0, var, 1)), np.nan)


def pearson(t: Any, W: np.ndarray) -> np.ndarray:
    y, p = t
    return _pearson(W, y, p)


def weighted_ranks(v: np.ndarray, W: np.ndarray) -> np.ndarray:
    """(B, n) mid-ranks of ``v`` in each replicate, a unit weighted w counting as w copies: the rank the
    copies share in the expanded sample (ties averaged, as ``scipy.stats.rankdata``). No library ranks
    under many weight vectors at once, so it is written here (tested against scipy on expanded samples)."""
    uniq, inv = np.unique(v, return_inverse=True)
    order = np.argsort(inv, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(inv[order]) != 0])
    group = np.add.reduceat(W[:, order], starts, axis=1)  # (B, U) weight of each distinct value
    below = np.cumsum(group, axis=1) - group
    return (below + (group + 1) / 2)[:, inv]


def spearman(t: Any, W: np.ndarray) -> np.ndarray:
    y, p = t
    return _pearson(W, weighted_ranks(y, W), weighted_ranks(p, W))


for _name, _fn, _hib, _bounds, _doc in (
        ("mae", mae, False, (0.0, float("inf")), "mean absolute error, in the target's units"),
        ("rmse", rmse, False, (0.0, float("inf")), "root mean squared error, in the target's units"),
        ("r2", r2, True, None, "coefficient of determination, 1 - SSE/SST"),
        ("pearson", pearson, True, (-1.0, 1.0), "Pearson correlation of prediction and truth"),
        ("spearman", spearman, True, (-1.0, 1.0), "Spearman rank correlation of prediction and truth")):
    register(Metric(_name, _hib, True, _doc, _table, _fn, bounds=_bounds), [NAME])
register(Metric("loss", False, True, "the training loss on the validation split"), [NAME])


# -- losses: only regression has them (bakeoff.losses takes them from Task.own_losses) -----------------------
def _mse(ctx: Any) -> Any:
    import torch.nn as nn

    return _OneOutput(nn.MSELoss())


def _huber(ctx: Any, *, delta: float = 1.0) -> Any:
    import torch.nn as nn

    return _OneOutput(nn.HuberLoss(delta=delta))


def _OneOutput(loss: Any) -> Any:  # noqa: N802 - a module factory, named like the class it makes
    """The loss on the network's single output (N, 1) against targets (N,)."""
    import torch.nn as nn

    class OneOutput(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.loss = loss

        def forward(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return self.loss(out.reshape(len(out), -1)[:, 0].float(), target.float())

    return OneOutput()


# -- built-in data ------------------------------------------------------------------------------------------
def make_spot_counts(n: int = 600, size: int = 32, max_spots: int = 8, snr: float = 4.0, seed: int = 0,
                     fields: int = 6) -> dict[str, np.ndarray]:
    """Synthetic 2D fluorescence fields (size x size) holding 0 to max_spots spots: count them.

    Returns ``X`` (n, size, size) float32 photon counts, ``y`` (n,) the number of spots (as float), and
    ``groups`` (the field of view each image comes from). Spots are Gaussian (sigma 1.0-1.6 pixels) at
    random positions on a smooth background with shot and read noise; ``snr`` is a spot's peak over the
    background noise. A pure function of its arguments."""
    from scipy.ndimage import gaussian_filter

    if n < 10 or size < 8 or max_spots < 1:
        raise ValueError(f"expected n >= 10, size >= 8 and max_spots >= 1; got n={n}, size={size}, "
                         f"max_spots={max_spots}")
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, max_spots + 1, size=n)
    groups = rng.integers(0, fields, size=n)
    level = rng.uniform(60, 120, size=n)
    texture = gaussian_filter(rng.normal(size=(n, size, size)), sigma=(0, 3, 3))
    texture /= texture.std(axis=(1, 2), keepdims=True) + 1e-12
    X = level[:, None, None] * (1 + 0.1 * texture)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    for i in range(n):
        for _ in range(counts[i]):
            cy, cx = rng.uniform(2, size - 3, size=2)
            sigma = rng.uniform(1.0, 1.6)
            amp = snr * np.sqrt(level[i]) * rng.uniform(0.8, 1.4)
            X[i] += amp * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma ** 2))
    X = rng.poisson(np.clip(X, 0, None)).astype(np.float64) + rng.normal(0, 2.0, size=X.shape)
    return {"X": X.astype(np.float32), "y": counts.astype(np.float64), "groups": groups}


register_source("builtin:spot_counts", dense=False, doc=first_sentence(make_spot_counts.__doc__))(
    generator_loader(make_spot_counts))


# -- the task -----------------------------------------------------------------------------------------------
@register_task
class Regression(Task):
    """One number per image (count, intensity, size): one network output, MSE by default, judged on MAE."""

    name = NAME
    default_primary = "mae"
    default_loss = "mse"
    loss_kind = "regression"  # no registered loss fits; its own below
    own_losses = {"mse": _mse, "huber": _huber}
    figures = ("predicted_vs_true",)
    fixed_classes = 1  # one output, no classes

    @classmethod
    def create(cls, num_classes: int | None = None, settings: Any = None) -> Task:
        if num_classes not in (None, 1):
            raise BakeoffError(f"task {cls.name}: predicts one number per image; expected no data.num_classes "
                               f"(got {num_classes})")
        return cls(1)

    @property
    def num_outputs(self) -> int:
        return 1

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """The prediction itself (saved where classification saves probabilities)."""
        return logits.reshape(len(logits), -1)[:, 0].float()

    def targets(self, y: torch.Tensor) -> torch.Tensor:
        return y.float()

    def score_part(self, d: dict[str, Any], boundary: bool | None = None,
                   threshold: float = 0.5) -> tuple[dict[str, Any], np.ndarray]:
        return {}, np.zeros((0, 0), np.int64)  # no confusion matrix: no classes

    def chance_note(self, d: dict[str, Any], metric: str, threshold: float = 0.5, seed: int = 0) -> str:
        """A run whose validation score is what its predictions get against shuffled targets (e.g. one that
        predicts nearly the same number for every image) learnt nothing."""
        return self.chance_by_permutation(d, metric, threshold, seed, truth="targets")

    def metrics_from(self, tables: dict[str, Any], d: dict[str, Any], threshold: float = 0.5) -> dict[str, float]:
        return self.metrics(d["y"], d["probs"], threshold)

    # -- data: a number per sample ---------------------------------------------------------------------------
    @classmethod
    def load_data(cls, cfg: Any, provided: Any = None) -> Any:
        from bakeoff.data.sources import from_arrays, load_source
        from bakeoff.data.transforms import normalize_data

        refuse_dense_settings(cfg, cls.name)
        if cfg.num_classes is not None:
            raise BakeoffError(f"data.num_classes: {cfg.num_classes}; task {cls.name} predicts a number per image: "
                               f"expected it left out")
        if provided is not None:
            data = from_arrays(provided.X, provided.y, ids=provided.ids, groups=provided.groups,
                               folds=provided.folds, num_classes=None, targets="values",
                               spatial_dims=provided.X.ndim - 2, name="data")
        else:
            data = load_source(cfg.source, cfg.params, spatial_dims=cfg.spatial_dims, num_classes=None,
                               image_size=cfg.image_size, channels=cfg.channels,
                               allow_outside_root=cfg.allow_outside_root, targets="values")
        if np.ptp(data.y) == 0:
            raise BakeoffError(f"data: every sample has target {data.y[0]:g}; expected targets that vary")
        normalize_data(data, cfg.normalize, cfg.in_memory)
        return data

    @classmethod
    def for_data(cls, data: Any, evaluation: Any) -> Task:
        return cls.create(None)

    @classmethod
    def for_predictions(cls, part: dict[str, Any], evaluation: Any) -> Task:
        return cls.create(None)

    def class_counts(self, data: Any, idx: np.ndarray) -> list[int]:
        return [int(len(idx))]  # one "class": the samples

    def data_checks(self, data: Any, splits: list[Any]) -> dict[str, Any]:
        s = splits[0]
        return {"targets": {part: {"mean": float(np.mean(data.y[s.indices(part)])),
                                   "sd": float(np.std(data.y[s.indices(part)])),
                                   "min": float(np.min(data.y[s.indices(part)])),
                                   "max": float(np.max(data.y[s.indices(part)]))}
                            for part in ("train", "val", "test")}}

    def loss_probe(self, data: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
        return np.asarray(data.y[:4], dtype=np.float64), None

    def speed_example(self, data: Any, test_idx: np.ndarray, input_shape: tuple[int, ...], batch: int) -> torch.Tensor:
        import torch

        return torch.from_numpy(np.asarray(data.X[test_idx[:batch]], dtype=np.float32))
