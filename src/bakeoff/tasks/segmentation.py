"""Semantic segmentation and particle picking: metrics from saved label maps (and particle probabilities).

Per image and class: Dice, IoU, precision, recall from the pixel confusion counts; HD95 and NSD from
MONAI's surface distances (as ``compute_hausdorff_distance``, ``compute_surface_dice``) in physical units
of ``spacing``, images scored in parallel threads. A
class absent from both the truth and the prediction of an image has no defined score there: it is
NaN for that image and left out of the class's mean (its count is reported as ``n_undefined_<metric>``).
When exactly one of them is empty, overlap scores are 0 (precision is undefined with no predicted
pixels, recall with no true ones), HD95 is the image diagonal (the largest possible distance) and NSD 0.

Every aggregate is a ratio of sums over images, so a bootstrap replicate (images drawn with
replacement, weights w) is ``sum(w * num) / sum(w * den)`` per column, averaged over columns: see
``sample_table``. Per-class scores average over images (macro); particle scores pool all particles.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from bakeoff.errors import BakeoffError
from bakeoff.tasks.base import Task, get_task, read_settings, register_task

if TYPE_CHECKING:
    import torch

OVERLAP = ("dice", "iou", "precision", "recall")
BOUNDARY = ("hd95", "nsd")
PARTICLE = ("particle_precision", "particle_recall", "particle_f1")
MAX_AUROC_PIXELS = 2_000_000  # pixel AUROC on an evenly strided subset beyond this many pixels


class SegmentationEvaluation(BaseModel):
    """``evaluation`` settings of semantic segmentation: mean Dice/IoU over the foreground classes only
    unless ``include_background``; the boundary metrics (HD95, NSD at ``nsd_tolerance`` physical units)
    can be switched off for speed."""

    model_config = ConfigDict(extra="forbid")
    include_background: bool = False
    boundary_metrics: bool = True
    nsd_tolerance: float = Field(1.0, gt=0)


class ParticleEvaluation(SegmentationEvaluation):
    """``evaluation`` settings of particle picking: segmentation's, and a predicted centre is a local maximum
    of the particle probability above ``peak_threshold``, at least ``min_distance`` pixels from a higher
    one; it matches a true centre within ``match_radius`` pixels (one-to-one, Hungarian)."""

    peak_threshold: float = Field(0.5, gt=0, lt=1)
    min_distance: int = Field(3, ge=1)
    match_radius: float = Field(4.0, gt=0)


@dataclass
class DenseSettings:
    class_names: list[str]
    include_background: bool = False
    boundary: bool = True
    nsd_tolerance: float = 1.0
    spacing: tuple[float, ...] | None = None
    peak_threshold: float = 0.5
    min_distance: int = 3
    match_radius: float = 4.0

    @classmethod
    def from_evaluation(cls, class_names: list[str], spacing: Any, evaluation: Any,
                        model: type[SegmentationEvaluation] = ParticleEvaluation) -> DenseSettings:
        """The study's ``evaluation`` settings (the task's own keys, ``model``) for images of this
        ``spacing``: the one place they are read."""
        ev = read_settings(model, evaluation).model_dump()
        return cls(list(class_names), ev["include_background"], ev["boundary_metrics"], ev["nsd_tolerance"],
                   None if spacing is None else tuple(spacing), ev.get("peak_threshold", cls.peak_threshold),
                   ev.get("min_distance", cls.min_distance), ev.get("match_radius", cls.match_radius))


def confusion_counts(pred: np.ndarray, true: np.ndarray, K: int) -> np.ndarray:
    """(K, K) pixel counts, rows truth and columns prediction."""
    return np.bincount(true.ravel().astype(np.int64) * K + pred.ravel().astype(np.int64),
                       minlength=K * K).reshape(K, K)


def overlap_scores(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class Dice, IoU, precision and recall of one image from its confusion matrix; NaN = undefined."""
    tp = np.diag(cm).astype(float)
    fp, fn = cm.sum(0) - tp, cm.sum(1) - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"dice": np.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan),
                "iou": np.where(tp + fp + fn > 0, tp / (tp + fp + fn), np.nan),
                "precision": np.where(tp + fp > 0, tp / (tp + fp), np.nan),
                "recall": np.where(tp + fn > 0, tp / (tp + fn), np.nan)}


def boundary_scores(pred: np.ndarray, true: np.ndarray, K: int, spacing: tuple[float, ...],
                    tolerance: float) -> dict[str, np.ndarray]:
    """Per-class HD95 and NSD of one image; the conventions above for empty masks.

    MONAI's ``get_edge_surface_distance`` (the function behind ``compute_hausdorff_distance`` and
    ``compute_surface_dice``) is called once per class, and both metrics are read off its two directed
    distance sets as MONAI does (HD95: the larger of the two 95th percentiles; NSD: the share of edge
    voxels within ``tolerance``), instead of computing the same edges and distances twice (tested
    against MONAI's two functions)."""
    import warnings

    import torch  # (task modules load without torch: bakeoff.tasks.base)
    from monai.metrics.utils import get_edge_surface_distance

    hd = np.full(K, np.nan)
    nsd = np.full(K, np.nan)
    diagonal = float(np.sqrt(sum((n * s) ** 2 for n, s in zip(true.shape, spacing))))
    p_lab, t_lab = torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(true.astype(np.int64))
    for k in range(K):
        p, t = p_lab == k, t_lab == k
        p_any, t_any = bool(p.any()), bool(t.any())
        if p_any != t_any:
            hd[k], nsd[k] = diagonal, 0.0
        if not (p_any and t_any):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, (d_pt, d_tp), _ = get_edge_surface_distance(p, t, distance_metric="euclidean", spacing=list(spacing),
                                                           symmetric=True, class_index=k)
        d_pt, d_tp = d_pt.double(), d_tp.double()
        hd[k] = float(max(torch.quantile(d_pt, 0.95), torch.quantile(d_tp, 0.95)))
        nsd[k] = float(((d_pt <= tolerance).sum() + (d_tp <= tolerance).sum()) / (len(d_pt) + len(d_tp)))
    return {"hd95": hd, "nsd": nsd}


def map_images(fn: Any, items: list[Any], parallel: bool) -> list[Any]:
    """``[fn(x) for x in items]``, in threads (one per CPU core) when ``parallel``: the surface distances
    (KD-tree queries, PyTorch ops) release the GIL for most of their time."""
    if not parallel or len(items) < 2 or (os.cpu_count() or 1) < 2:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(os.cpu_count() or 1, len(items))) as pool:
        return list(pool.map(fn, items))


def find_particles(prob: np.ndarray, threshold: float, min_distance: int) -> np.ndarray:
    """Centres (n, ndim) of the local maxima of ``prob`` above ``threshold`` (scipy maximum filter; a
    plateau of equal maxima counts once, at its centroid)."""
    from scipy import ndimage  # here, not at import: every study imports the tasks (0.3 s of scipy)

    peaks = (prob >= ndimage.maximum_filter(prob, size=2 * min_distance + 1, mode="nearest")) & (prob > threshold)
    labels, n = ndimage.label(peaks)
    if n == 0:
        return np.zeros((0, prob.ndim), np.float32)
    return np.asarray(ndimage.center_of_mass(peaks, labels, range(1, n + 1)), dtype=np.float32).reshape(n, prob.ndim)


def mask_centres(mask: np.ndarray) -> np.ndarray:
    """Centroids of the connected components of a binary particle mask."""
    from scipy import ndimage

    labels, n = ndimage.label(mask > 0)
    if n == 0:
        return np.zeros((0, mask.ndim), np.float32)
    return np.asarray(ndimage.center_of_mass(mask > 0, labels, range(1, n + 1)), dtype=np.float32).reshape(n, mask.ndim)


def match_particles(pred: np.ndarray, true: np.ndarray, radius: float) -> dict[str, Any]:
    """One-to-one matching of predicted to true centres within ``radius`` (Hungarian, scipy): the most
    matches possible, and among those the smallest total distance."""
    from scipy.optimize import linear_sum_assignment

    pred, true = np.asarray(pred, float).reshape(-1, true.shape[1] if true.ndim == 2 else 2), np.asarray(true, float)
    if len(pred) == 0 or len(true) == 0:
        return {"tp": 0, "fp": len(pred), "fn": len(true), "pairs": np.zeros((0, 2), int), "distances": np.zeros(0)}
    d = np.sqrt(((pred[:, None, :] - true[None, :, :]) ** 2).sum(-1))
    big = 1e6 + d.max() * (len(pred) + len(true))
    cost = np.where(d <= radius, d, big)
    rows, cols = linear_sum_assignment(cost)
    ok = d[rows, cols] <= radius
    tp = int(ok.sum())
    return {"tp": tp, "fp": len(pred) - tp, "fn": len(true) - tp, "pairs": np.stack([rows[ok], cols[ok]], 1),
            "distances": d[rows[ok], cols[ok]]}


def ratio_mean(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Mean over columns of num / den for summed (replicates, columns) arrays; columns with den 0 are
    undefined and left out (NaN when every column is)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        per_col = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    valid = ~np.isnan(per_col)
    return np.where(valid.any(1), np.nansum(per_col, 1) / np.maximum(valid.sum(1), 1), np.nan)


def aggregate(num: np.ndarray, den: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Mean over columns of sum_i(w num) / sum_i(w den); ``w`` (B, N) gives B replicates at once."""
    if w is None:
        w = np.ones((1, len(num)))
    return ratio_mean(w @ num, w @ den)


@register_task
class SemanticSegmentation(Task):
    """C logits per pixel; predictions are label maps (argmax of the softmax)."""

    name = "semantic_segmentation"
    default_primary = "mean_dice"
    default_loss = "ce"
    loss_kind = "dense"
    dense = True
    figures = ("confusion_matrices", "class_scores", "qualitative", "feature_maps")
    saves_feature_maps = True
    evaluation_settings = SegmentationEvaluation

    def data_checks(self, data: Any, splits: list[Any]) -> dict[str, Any]:
        """The classes that never occur in a fold's training images (their scores are undefined in meaning)."""
        import warnings

        absent = {s.fold: [int(k) for k in np.flatnonzero(data.class_pixels[s.train].sum(0) == 0)] for s in splits}
        absent = {f: ks for f, ks in absent.items() if ks}
        if absent:
            f, ks = next(iter(absent.items()))
            warnings.warn(f"data: class(es) {[self.class_names[k] for k in ks]} never occur in the training images "
                          f"of fold {f}; their scores are reported but undefined in meaning", stacklevel=3)
        return {"classes_absent_from_training": absent}

    @classmethod
    def create(cls, num_classes: int | None, settings: Any = None) -> Task:
        if cls.fixed_classes is not None:
            if num_classes not in (None, cls.fixed_classes):
                raise BakeoffError(f"task {cls.name}: masks hold background 0 and particle 1; got {num_classes} "
                                   f"classes")
            return cls(cls.fixed_classes, settings)
        if not num_classes or num_classes < 2:
            raise BakeoffError(f"task {cls.name}: needs at least 2 classes (background included), got {num_classes}")
        return cls(num_classes, settings)

    def __init__(self, num_classes: int, settings: DenseSettings | None = None) -> None:
        super().__init__(num_classes)
        self.settings = settings or DenseSettings([f"class{k}" for k in range(num_classes)])

    _overall = ("mean_dice", "mean_iou", "mean_precision", "mean_recall", "pixel_accuracy", "mean_hd95", "mean_nsd")

    @property
    def metric_names(self) -> tuple[str, ...]:
        return (*self._overall, *self.per_class_names())

    def per_class_names(self) -> tuple[str, ...]:
        return tuple(f"{m}_{n}" for m in OVERLAP + BOUNDARY for n in self.class_names)

    @classmethod
    def family_of(cls, name: str) -> str | None:
        family = next((m for m in OVERLAP + BOUNDARY if name.startswith(f"{m}_")), None)
        return None if family is None else f"mean_{family}"

    def per_class_metric(self, name: str) -> Any:
        """``dice_nucleus`` is the Dice of class 'nucleus': a ratio of sums over images like the mean."""
        if name not in self.per_class_names():
            return None
        family = next(m for m in OVERLAP + BOUNDARY if name.startswith(f"{m}_"))
        return dense_metric(name, family != "hd95", f"{family} of class {name[len(family) + 1:]}")

    @property
    def class_names(self) -> list[str]:
        names = list(self.settings.class_names)
        return names if len(names) == self.num_classes else [f"class{k}" for k in range(self.num_classes)]

    @property
    def num_outputs(self) -> int:
        return self.num_classes

    @property
    def output_text(self) -> str:
        return f"{self.num_outputs} scores per pixel: class probabilities = softmax"

    @property
    def scored_classes(self) -> list[int]:
        return list(range(0 if self.settings.include_background else 1, self.num_classes))

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float().softmax(dim=1)

    def targets(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def label_map(self, probs: torch.Tensor) -> torch.Tensor:
        return probs.argmax(1)

    def foreground(self, probs: torch.Tensor) -> torch.Tensor | None:
        """The map saved beside the labels (particle probability); None for plain segmentation."""
        return None

    def predicted_labels(self, logits: torch.Tensor, loss_fn: Any) -> np.ndarray:
        """One image's predicted label map (``logits``: (1, C, *spatial)) as saved: here the arg-max class
        (uint8); a task whose outputs mean something else decodes them its own way."""
        import torch

        return self.label_map(self.probabilities(logits))[0].to(torch.uint8).cpu().numpy()

    # -- verdicts: per-image tables paired by (seed, fold) and image id ------------------------------------
    unit = "image"

    per_run_tests = ("wilcoxon_images",)  # stats.paired: Wilcoxon of the images' own scores

    # -- images, read patch by patch ------------------------------------------------------------------------
    @classmethod
    def load_data(cls, cfg: Any, provided: Any = None) -> Any:
        from bakeoff.data.segdata import load_dense_source

        if provided is not None:
            return provided
        return load_dense_source(cfg.source, cfg.params, spatial_dims=cfg.spatial_dims,
                                 num_classes=cls.fixed_classes or cfg.num_classes, spacing=cfg.spacing,
                                 normalize=cfg.normalize, mask_values=cfg.mask_values, channels=cfg.channels,
                                 allow_outside_root=cfg.allow_outside_root)

    @classmethod
    def for_data(cls, data: Any, evaluation: Any) -> Task:
        names = list(data.class_names or [f"class{k}" for k in range(data.num_classes)])
        settings = DenseSettings.from_evaluation(names, data.spacing, evaluation, cls.evaluation_settings)
        return get_task(cls.name, data.num_classes, settings)

    @classmethod
    def for_predictions(cls, part: dict[str, Any], evaluation: Any) -> Task:
        settings = DenseSettings.from_evaluation(part["class_names"], part["spacing"], evaluation,
                                                 cls.evaluation_settings)
        return get_task(cls.name, len(part["class_names"]), settings)

    def class_counts(self, data: Any, idx: np.ndarray) -> list[int]:
        return data.class_pixels[idx].sum(0).astype(int).tolist()

    def speed_example(self, data: Any, test_idx: np.ndarray, input_shape: tuple[int, ...], batch: int) -> torch.Tensor:
        import torch

        return torch.from_numpy(np.stack([data.patch(int(test_idx[0]), (0,) * data.spatial_dims, input_shape)[0]]
                                         * batch))

    def save_extras(self, module: Any, data: Any, val_idx: np.ndarray, preds: dict[str, Any], contender: Any,
                    evaluation: Any, input_shape: tuple[int, ...], run_dir: Any) -> None:
        """The first validation images (by id: the same for every contender) for the qualitative figure,
        and the feature maps of ``contender.feature_layer`` on the first one."""
        order = np.argsort(data.ids[val_idx], kind="stable")[: evaluation.qualitative_samples]
        chosen = set(order.tolist())
        preds["val"]["image"] = [data.image(int(val_idx[j])).astype(np.float16) if j in chosen else None
                                 for j in range(len(val_idx))]
        if contender.feature_layer:
            from bakeoff.layout import FEATURES_FILE
            from bakeoff.measure.features import feature_maps
            from bakeoff.utils import save_npz

            first = int(val_idx[order[0]])
            x = data.patch(first, (0,) * data.spatial_dims, input_shape)[0]
            save_npz(run_dir / FEATURES_FILE, **feature_maps(module.model, contender.feature_layer, x),
                     image_id=np.asarray(data.ids[first]))

    def health(self, d: dict[str, Any], threshold: float = 0.5) -> str:
        """'' for a healthy run; else the classes present in the test images' truth that it never predicts
        (a picker that finds no particle pixel; a network that paints everything background), from the test
        part's summed pixel confusion matrix ``d["confusion"]`` (rows: truth)."""
        cm = d.get("confusion")
        cm = None if cm is None else np.asarray(cm, dtype=float)
        if cm is None or cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
            return ""
        predicted, true = cm.sum(0), cm.sum(1)
        missing = [k for k in range(len(true)) if true[k] > 0 and predicted[k] == 0]
        if (true > 0).sum() < 2 or predicted.sum() == 0 or not missing:
            return ""
        names = list(d.get("class_names") or self.class_names)

        def name(k: int) -> str:
            return repr(str(names[k])) if k < len(names) else repr(str(k))

        if (predicted > 0).sum() == 1:
            return f"collapsed: predicts class {name(int(predicted.argmax()))} for every pixel of the test images"
        listed = ", ".join(name(k) for k in missing)
        return (f"collapsed: never predicts class{'es' if len(missing) > 1 else ''} {listed} on the test images "
                f"({true[missing].sum() / true.sum():.1%} of their true pixels)")

    # -- metrics ------------------------------------------------------------------------------------------
    def image_scores(self, pred: np.ndarray, true: np.ndarray, boundary: bool | None = None) -> dict[str, np.ndarray]:
        K, s = self.num_classes, self.settings
        cm = confusion_counts(pred, true, K)
        out = overlap_scores(cm)
        out["correct"], out["pixels"] = np.array([np.trace(cm)]), np.array([cm.sum()])
        if s.boundary if boundary is None else boundary:
            out.update(boundary_scores(pred, true, K, s.spacing or (1.0,) * true.ndim, s.nsd_tolerance))
        out["confusion"] = cm
        return out

    def score_part(self, d: dict[str, Any], boundary: bool | None = None,
                   threshold: float = 0.5) -> tuple[dict[str, Any], np.ndarray]:
        """Per metric (num, den), each (n_images, columns), so that the metric is ``aggregate(num, den)``;
        and the summed pixel confusion matrix."""
        per = map_images(lambda pt: self.image_scores(pt[0], pt[1], boundary), list(zip(d["pred"], d["y"])),
                         parallel=self.settings.boundary if boundary is None else boundary)
        cols = self.scored_classes
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for m in OVERLAP + BOUNDARY:
            if m not in per[0]:
                continue
            v = np.stack([s[m] for s in per])  # (N, K)
            valid = ~np.isnan(v)
            num, den = np.where(valid, v, 0.0), valid.astype(float)
            out[f"mean_{m}"] = (num[:, cols], den[:, cols])
            for k, name in enumerate(self.class_names):
                out[f"{m}_{name}"] = (num[:, [k]], den[:, [k]])
        out["pixel_accuracy"] = (np.stack([s["correct"] for s in per]).astype(float),
                                 np.stack([s["pixels"] for s in per]).astype(float))
        return out, sum(s["confusion"] for s in per)

    def scoring_settings(self) -> dict[str, Any] | None:
        import dataclasses

        return dataclasses.asdict(self.settings)

    def tables(self, d: dict[str, Any], boundary: bool | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return self.score_part(d, boundary)[0]

    def metrics_from(self, tables: dict[str, Any], d: dict[str, Any], threshold: float = 0.5) -> dict[str, float]:
        metrics = {m: float(aggregate(*t)[0]) for m, t in tables.items()}
        for m, (_, den) in tables.items():
            if not m.startswith("mean_") and m != "pixel_accuracy" and m.split("_")[0] in ("dice", "hd95"):
                metrics[f"n_undefined_{m}"] = float((den[:, 0] == 0).sum())
        return metrics

    def evaluate_part(self, d: dict[str, Any], threshold: float = 0.5, boundary: bool | None = None,
                      keep_tables: dict[str, Any] | None = None) -> tuple[dict[str, float], np.ndarray]:
        """Metrics and the pixel confusion matrix of one part; ``keep_tables`` receives the per-image
        tables (for paired comparisons, so they are not computed twice)."""
        tables, cm = self.score_part(d, boundary)
        if keep_tables is not None:
            keep_tables.update(tables)
        return self.metrics_from(tables, d), cm


@register_task
class ParticlePicking(SemanticSegmentation):
    """Segmentation of particle discs (background / particle), judged per pixel and per particle."""

    name = "particle_picking"
    default_primary = "particle_f1"
    fixed_classes = 2
    evaluation_settings = ParticleEvaluation

    def __init__(self, num_classes: int = 2, settings: DenseSettings | None = None) -> None:
        super().__init__(2, settings or DenseSettings(["background", "particle"]))

    _overall = ("particle_f1", "particle_precision", "particle_recall", "pixel_auroc", "dice", "iou", "precision",
                "recall", "hd95", "nsd", "pixel_accuracy", "localisation_error")

    def per_class_names(self) -> tuple[str, ...]:
        return ()

    def foreground(self, probs: torch.Tensor) -> torch.Tensor | None:
        return probs[:, 1]

    def score_part(self, d: dict[str, Any], boundary: bool | None = None,
                   threshold: float = 0.5) -> tuple[dict[str, Any], np.ndarray]:
        seg, cm = super().score_part(d, boundary)
        out = {m: seg[f"{m}_particle"] for m in OVERLAP + BOUNDARY if f"{m}_particle" in seg}
        out["pixel_accuracy"] = seg["pixel_accuracy"]
        s = self.settings
        counts, err = [], []
        for prob, centres in zip(d["prob"], d["centres"]):
            found = find_particles(prob.astype(np.float32), s.peak_threshold, s.min_distance)
            m = match_particles(found, centres.reshape(-1, prob.ndim), s.match_radius)
            counts.append((m["tp"], m["fp"], m["fn"]))
            err.append((m["distances"].sum(), m["tp"]))
        c = np.asarray(counts, float).reshape(-1, 3)
        tp, fp, fn = c[:, [0]], c[:, [1]], c[:, [2]]
        out["particle_precision"] = (tp, tp + fp)
        out["particle_recall"] = (tp, tp + fn)
        out["particle_f1"] = (2 * tp, 2 * tp + fp + fn)
        e = np.asarray(err, float).reshape(-1, 2)
        out["localisation_error"] = (e[:, [0]], e[:, [1]])
        return out, cm

    def metrics_from(self, tables: dict[str, Any], d: dict[str, Any], threshold: float = 0.5) -> dict[str, float]:
        metrics = {k: float(aggregate(*t)[0]) for k, t in tables.items()}
        metrics["pixel_auroc"] = pixel_auroc(d["prob"], d["y"])
        return metrics


def pixel_auroc(probs: list[np.ndarray], masks: list[np.ndarray]) -> float:
    """AUROC of the particle probability over all pixels (torchmetrics), strided beyond MAX_AUROC_PIXELS."""
    import torch
    import torchmetrics.functional.classification as tmf

    p = np.concatenate([np.asarray(a, np.float32).ravel() for a in probs])
    t = np.concatenate([np.asarray(m).ravel() > 0 for m in masks])
    step = max(1, len(p) // MAX_AUROC_PIXELS)
    p, t = p[::step], t[::step]
    if t.all() or not t.any():
        return float("nan")
    return float(tmf.binary_auroc(torch.from_numpy(p), torch.from_numpy(t.astype(np.int64))))


# -- the built-in metrics of these tasks, registered as this module loads ------------------------------
def dense_metric(name: str, higher_is_better: bool, doc: str = "") -> Any:
    """A ratio-of-sums dense metric: its table is the part's per-image (num, den) for ``name``."""
    from bakeoff.tasks.metric import Metric, builtin_bounds

    def update(part: dict[str, Any], task: Any, threshold: float) -> Any:
        tables = part.get("tables")
        if tables is None or name not in tables:
            tables = task.tables(part, boundary=True)
        return tables[name]

    return Metric(name, higher_is_better, True, doc, update, lambda t, W: aggregate(t[0], t[1], W),
                  bounds=builtin_bounds(name))


def _register_metrics() -> None:
    """Every metric but pixel AUROC is a ratio of sums over images of a (num, den) table."""
    from bakeoff.tasks.metric import Metric, register

    semantic, picking = SemanticSegmentation.name, ParticlePicking.name
    for n, hib, doc in (("mean_dice", True, "Dice averaged over images, then over the scored classes"),
                        ("mean_iou", True, ""), ("mean_precision", True, ""), ("mean_recall", True, ""),
                        ("mean_hd95", False, "95th-percentile Hausdorff distance, physical units"),
                        ("mean_nsd", True, "normalised surface distance at the study's tolerance")):
        register(dense_metric(n, hib, doc), (semantic,))
    register(dense_metric("pixel_accuracy", True, "fraction of pixels labelled correctly"), (semantic, picking))
    for n, hib, doc in (("particle_f1", True, "F1 of predicted vs true particle centres (Hungarian)"),
                        ("particle_precision", True, ""), ("particle_recall", True, ""),
                        ("dice", True, "Dice of the particle class"), ("iou", True, ""), ("precision", True, ""),
                        ("recall", True, ""), ("hd95", False, ""), ("nsd", True, ""),
                        ("localisation_error", False, "mean distance of matched centres, pixels")):
        register(dense_metric(n, hib, doc), (picking,))
    register(Metric("pixel_auroc", True, True, "AUROC of the particle probability over all pixels", bounds=(0.0, 1.0)),
             (picking,))
    register(Metric("loss", False, True, "the training loss on the validation split"), (semantic, picking))


_register_metrics()
