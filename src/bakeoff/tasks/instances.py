"""Instance segmentation: cells and nuclei counted one by one, scored by matched objects.

Masks are label images (0 background, one positive id per object; any integer width, never narrowed to
fewer bits than the ids need). A contender's network outputs per-pixel scores whose meaning its loss
declares, and the loss turns them back into objects (its ``decode``). ``flows`` is Cellpose's representation
(two flow components towards each object's centre and a cell probability, Cellpose's loss, objects by its
dynamics: ``flow_threshold``, ``cellprob_threshold``). The built-in ``boundary_ce`` trains
three classes, background / object interior / object boundary (the boundary from scikit-image's
``find_boundaries``), and decodes by seeded watershed (scikit-image): seeds are the connected regions where
the interior probability exceeds ``seed_threshold``, grown over the pixels whose object probability
(interior + boundary) exceeds ``foreground_threshold``, along the falling interior probability; objects
smaller than ``min_size`` pixels are removed. The same decoding settings hold for every contender.

Scoring (``bakeoff.measure.instances``): StarDist's matching at IoU thresholds 0.50 ... 0.90, per test
image; ``mean_ap`` (the default primary) is each image's mean over the thresholds of TP / (TP + FP + FN),
averaged over images (the Data Science Bowl's definition; StarDist and Cellpose call it AP or accuracy),
``ap50``/``ap75``/``ap90`` at one threshold, ``f1`` and ``panoptic_quality`` at 0.5, ``count_error`` the mean
|predicted − true| object count. An image with no object in its truth and none predicted has no score
and is left out of the means. Whole test images are the verdicts' units, as in semantic segmentation.

Built-in data registered here: ``builtin:cells2d``, synthetic touching cells of varied size and shape
with known instances, and ``builtin:nuclei2d_instances``, the stardist wheel's real nuclei image as tiles.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from bakeoff.errors import BakeoffError
from bakeoff.tasks.base import get_task, read_settings, register_task
from bakeoff.tasks.segmentation import DenseSettings, SemanticSegmentation, aggregate

if TYPE_CHECKING:
    import torch

THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(9))  # 0.50 ... 0.90


class InstanceEvaluation(BaseModel):
    """``evaluation`` settings of instance segmentation: how the outputs become objects (the same for every
    contender) and the IoU thresholds objects are matched at."""

    model_config = ConfigDict(extra="forbid")
    seed_threshold: float = Field(0.5, gt=0, lt=1)  # boundary_ce: the watershed's seeds
    foreground_threshold: float = Field(0.5, gt=0, lt=1)  # boundary_ce: its objects
    flow_threshold: float = Field(0.4, ge=0)  # flows: Cellpose's flow error allowed per object (its default)
    cellprob_threshold: float = 0.0  # flows: the cell-probability logit an object's pixels exceed
    min_size: int = Field(8, ge=0)
    iou_thresholds: list[float] = Field(default_factory=lambda: list(THRESHOLDS), min_length=1)


# -- the losses that give the outputs a meaning, and turn them back into objects ---------------------------
def boundary_targets(labels: np.ndarray) -> np.ndarray:
    """Three classes from instance labels (B, *spatial): 0 background, 1 interior, 2 boundary (the object
    pixels next to another object or the background, ``skimage.segmentation.find_boundaries``, inner)."""
    from skimage.segmentation import find_boundaries

    out = (labels > 0).astype(np.int64)
    for b in range(len(labels)):
        out[b][find_boundaries(labels[b], mode="inner") & (labels[b] > 0)] = 2
    return out


def watershed_objects(interior: np.ndarray, objects: np.ndarray, seed_threshold: float, foreground_threshold: float,
                      min_size: int) -> np.ndarray:
    """Instance labels (int32) from interior and object probability maps by seeded watershed."""
    from scipy import ndimage
    from skimage.segmentation import relabel_sequential, watershed

    seeds, _ = ndimage.label(interior > seed_threshold)
    mask = objects > foreground_threshold
    labels = watershed(-interior, markers=seeds, mask=mask)
    small = np.bincount(labels.ravel()) < min_size  # objects of fewer than min_size pixels
    small[0] = False
    labels[small[labels]] = 0
    return relabel_sequential(labels)[0].astype(np.int32)


def _boundary_ce(ctx: Any, *, boundary_weight: float = 2.0) -> Any:
    """Cross-entropy over background / interior / boundary (the boundary class weighted
    ``boundary_weight``), decoded by seeded watershed."""
    import torch
    from torch import nn

    class BoundaryCE(nn.Module):
        channels = 3

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("weight", torch.tensor([1.0, 1.0, float(boundary_weight)]))

        def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            target = torch.from_numpy(boundary_targets(y.detach().cpu().numpy())).to(logits.device)
            return nn.functional.cross_entropy(logits.float(), target, weight=self.weight)

        def decode(self, logits: torch.Tensor, s: InstanceEvaluation) -> np.ndarray:
            p = logits.float().softmax(0).cpu().numpy()  # (3, *spatial)
            return watershed_objects(p[1], p[1] + p[2], s.seed_threshold, s.foreground_threshold, s.min_size)

    return BoundaryCE()


def flow_targets(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cellpose's training targets for a batch of instance labels (B, H, W): each object's flow field towards
    its centre (``cellpose.dynamics.masks_to_flows_gpu``, run on the CPU; (B, 2, H, W)) and the object mask.
    Computed on the training patch, so an object cut by the patch's edge flows to the centre of its visible
    part (Cellpose computes them on the whole image before cropping)."""
    import torch
    from cellpose import dynamics
    from skimage.segmentation import relabel_sequential

    flows = np.zeros((len(labels), 2, *labels.shape[1:]), np.float32)
    for b, lab in enumerate(labels):
        lab = relabel_sequential(np.asarray(lab))[0].astype(np.int32)
        if lab.max() > 0:
            flows[b] = dynamics.masks_to_flows_gpu(lab, device=torch.device("cpu"))[0]
    return flows, (labels > 0).astype(np.float32)


def _flows(ctx: Any, *, flow_weight: float = 1.0) -> Any:
    """Cellpose's flow representation: two flow components (towards each object's centre) and a cell
    probability logit, trained with Cellpose's loss (MSE against 5 x the flows, halved, plus BCE on the
    cell probability); objects recovered by Cellpose's dynamics (``cellpose.dynamics.compute_masks``)."""
    import importlib.util

    import torch
    from torch import nn

    if importlib.util.find_spec("cellpose") is None:
        raise BakeoffError("protocol.loss.name: flows follows Cellpose's dynamics, which is not installed; expected "
                           "it: pip install 'bakeoff[instances]'")

    class CellposeFlows(nn.Module):
        channels = 3

        def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            flows, cells = (torch.from_numpy(a).to(logits.device) for a in flow_targets(y.detach().cpu().numpy()))
            out = logits.float()
            return (flow_weight * nn.functional.mse_loss(out[:, :2], 5 * flows) / 2
                    + nn.functional.binary_cross_entropy_with_logits(out[:, 2], cells))

        def decode(self, logits: torch.Tensor, s: InstanceEvaluation) -> np.ndarray:
            from cellpose import dynamics
            from skimage.segmentation import relabel_sequential

            out = logits.float().cpu().numpy()
            with warnings.catch_warnings():  # torch's note on sparse tensors, from inside Cellpose: not the user's
                warnings.filterwarnings("ignore", message="Sparse invariant checks")
                masks = dynamics.compute_masks(out[:2], out[2], niter=200, cellprob_threshold=s.cellprob_threshold,
                                               flow_threshold=s.flow_threshold, min_size=s.min_size)
            masks = masks[0] if isinstance(masks, tuple) else masks
            return relabel_sequential(np.asarray(masks))[0].astype(np.int32)

    return CellposeFlows()


@register_task
class InstanceSegmentation(SemanticSegmentation):
    """Objects (cells, nuclei) one by one: label images in, matched objects scored (AP over IoU thresholds,
    F1, panoptic quality, count error)."""

    name = "instance_segmentation"
    words = "instance segmentation"
    default_primary = "mean_ap"
    default_loss = "boundary_ce"
    loss_kind = "instances"  # no registered loss fits: the outputs mean what this task's own losses say
    own_losses = {"boundary_ce": _boundary_ce, "flows": _flows}
    evaluation_settings = InstanceEvaluation
    decodes_with_loss = True  # the contender's loss turns its outputs into objects (predicted_labels)
    figures = ("instances",)  # report.plots: AP against the IoU threshold, objects outlined
    saves_feature_maps = False

    def __init__(self, num_classes: int = 2, settings: DenseSettings | None = None,
                 instance: InstanceEvaluation | None = None) -> None:
        super().__init__(2, settings or DenseSettings(["background", "object"], boundary=False))
        self.instance = instance or InstanceEvaluation()

    @classmethod
    def create(cls, num_classes: int | None, settings: Any = None) -> InstanceSegmentation:
        return cls(2, settings)

    @classmethod
    def _configured(cls, evaluation: Any, spacing: Any = None) -> InstanceSegmentation:
        task = get_task(cls.name, 2, DenseSettings(["background", "object"], spacing=tuple(spacing or ()) or None,
                                                   boundary=False))
        task.instance = read_settings(InstanceEvaluation, evaluation)
        return task

    @classmethod
    def for_data(cls, data: Any, evaluation: Any) -> InstanceSegmentation:
        return cls._configured(evaluation, data.spacing)

    @classmethod
    def for_predictions(cls, part: dict[str, Any], evaluation: Any) -> InstanceSegmentation:
        return cls._configured(evaluation)

    @classmethod
    def load_data(cls, cfg: Any, provided: Any = None) -> Any:
        import importlib.util

        from bakeoff.data.segdata import load_dense_source

        if importlib.util.find_spec("stardist") is None:
            raise BakeoffError(f"task {cls.name}: matches objects with StarDist's matching, which is not installed; "
                               f"expected it: pip install 'bakeoff[instances]'")
        if provided is not None:
            return provided
        if cfg.mask_values is not None:
            raise BakeoffError(f"data.mask_values: {cfg.mask_values}; task {cls.name} reads each mask value as one "
                               f"object's id (0 background), not as a class: expected it left out")
        return load_dense_source(cfg.source, cfg.params, spatial_dims=cfg.spatial_dims, num_classes=2,
                                 spacing=cfg.spacing, normalize=cfg.normalize, channels=cfg.channels,
                                 allow_outside_root=cfg.allow_outside_root, instances=True)

    @property
    def thresholds(self) -> tuple[float, ...]:
        return tuple(float(t) for t in self.instance.iou_thresholds)

    _overall = ("mean_ap", "f1", "panoptic_quality", "count_error")

    def per_class_names(self) -> tuple[str, ...]:
        """AP at each of the study's IoU thresholds: ``ap50`` ... ``ap90`` (a metric each, in results.csv)."""
        return tuple(f"ap{round(t * 100)}" for t in self.thresholds)

    @classmethod
    def family_of(cls, name: str) -> str | None:
        return "mean_ap" if name.startswith("ap") and name[2:].isdigit() else None

    def per_class_metric(self, name: str) -> Any:
        from bakeoff.tasks.segmentation import dense_metric

        if name not in self.per_class_names():
            return None
        return dense_metric(name, True, f"TP/(TP+FP+FN) at IoU {int(name[2:]) / 100:.2f}, averaged over images")

    @property
    def num_outputs(self) -> int:
        return 3

    @property
    def output_text(self) -> str:
        return ("3 scores per pixel whose meaning the contender's loss declares (boundary_ce: background / interior / "
                "boundary, objects by seeded watershed; flows: Cellpose's two flow components and cell probability, "
                "objects by Cellpose's dynamics)")

    def predicted_labels(self, logits: torch.Tensor, loss_fn: Any) -> np.ndarray:
        """One image's objects (``logits``: (1, C, *spatial)), decoded as the contender's loss declares."""
        decode = getattr(loss_fn, "decode", None)
        if decode is None:
            raise BakeoffError(f"task {self.name}: the loss {type(loss_fn).__name__} does not say how its outputs "
                               f"become objects (a decode method); expected one of {list(self.own_losses)}")
        return decode(logits[0], self.instance)

    def health(self, d: dict[str, Any], threshold: float = 0.5) -> str:
        if d.get("pred") and all(int(np.max(p)) == 0 for p in d["pred"]) and any(int(np.max(t)) > 0 for t in d["y"]):
            return "collapsed: finds no object in any test image"
        return ""

    def score_part(self, d: dict[str, Any], boundary: bool | None = None,
                   threshold: float = 0.5) -> tuple[dict[str, Any], np.ndarray]:
        """Per metric (num, den) over images: an image's AP (or F1, PQ) where defined (den 1), else 0 / 0."""
        from bakeoff.measure.instances import image_scores, match_counts, stack_counts

        t = self.thresholds
        counts = stack_counts([match_counts(true, pred, t) for pred, true in zip(d["pred"], d["y"])])
        per = image_scores(counts, t)

        def table(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            ok = np.isfinite(v)
            return np.where(ok, v, 0.0)[:, None], ok.astype(float)[:, None]

        out = {"mean_ap": table(per["mean_ap"]), "f1": table(per["f1"]),
               "panoptic_quality": table(per["panoptic_quality"]), "count_error": table(per["count_error"])}
        for name, x in zip(self.per_class_names(), t):
            out[name] = table(per[f"ap@{x:.2f}"])
        cm = np.zeros((2, 2))
        cm[0, 0] = counts["n_true"].sum()  # (objects, not pixels: what health and the tables read)
        return out, cm

    def metrics_from(self, tables: dict[str, Any], d: dict[str, Any], threshold: float = 0.5) -> dict[str, float]:
        metrics = {m: float(aggregate(*t)[0]) for m, t in tables.items()}
        metrics["n_undefined_mean_ap"] = float((tables["mean_ap"][1][:, 0] == 0).sum())
        return metrics


# -- built-in data ---------------------------------------------------------------------------------------
def make_cells2d(n: int = 24, size: int = 96, cells: tuple[int, int] = (8, 16), radius: tuple[float, float] = (6, 12),
                 noise: float = 0.15, seed: int = 0) -> dict:
    """Synthetic fluorescent cells that touch and overlap, of varied size and shape, with known instances.

    Each cell is an ellipse (radii drawn from ``radius``, axis ratio 0.6-1, any angle); where cells overlap,
    a pixel belongs to the cell it is deepest in (the smallest normalised elliptical distance), so touching
    cells meet along a shared border, as in crowded tissue. Intensity: each cell its own brightness, brighter
    towards its centre and dimmer at its border, blurred and with Gaussian noise of sd ``noise``."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    images, masks = [], []
    for _ in range(n):
        k = int(rng.integers(cells[0], cells[1] + 1))
        depth = np.full((size, size), np.inf)
        labels = np.zeros((size, size), np.int32)
        bright = np.zeros((size, size))
        for j in range(k):
            cy, cx = rng.uniform(0, size, 2)
            ry = rng.uniform(*radius)
            rx = ry * rng.uniform(0.6, 1.0)
            a = rng.uniform(0, np.pi)
            u = (yy - cy) * np.cos(a) + (xx - cx) * np.sin(a)
            v = -(yy - cy) * np.sin(a) + (xx - cx) * np.cos(a)
            d = np.sqrt((u / ry) ** 2 + (v / rx) ** 2)
            take = (d <= 1) & (d < depth)
            depth[take], labels[take] = d[take], j + 1
            bright[take] = rng.uniform(0.5, 1.0) * (1 - 0.5 * d[take] ** 2)
        img = gaussian_filter(bright, 1.0) + rng.normal(0, noise, (size, size))
        from skimage.segmentation import relabel_sequential

        images.append(img.astype(np.float32)[None])
        masks.append(relabel_sequential(labels)[0].astype(np.int32))
    return {"images": images, "masks": masks, "class_names": ["background", "object"]}


def load_nuclei2d_instances(tile: int = 128) -> dict:
    """The stardist wheel's real 2D nuclei image with its instance mask (125 labelled nuclei), as tiles.

    The tiles and their spatial split are ``builtin:nuclei2d``'s (top half trains, third quarter validates,
    bottom quarter tests); each tile keeps its nuclei's ids, renumbered 1..n within the tile."""
    import tifffile
    from skimage.segmentation import relabel_sequential

    from bakeoff.data.seg_builtin import load_nuclei2d, stardist_data_folder

    tiles = load_nuclei2d(tile)
    inst = tifffile.imread(stardist_data_folder() / "mask2d.tif")
    masks = []
    for name in tiles["ids"]:
        r, c = (int(v) for v in name[1:].split("c"))
        masks.append(relabel_sequential(inst[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile])[0].astype(np.int32))
    return {**tiles, "masks": masks, "class_names": ["background", "object"]}


def _register_data() -> None:
    from bakeoff.data.registry import first_sentence, register_source
    from bakeoff.data.segdata import dense_loader

    for name, fn in (("cells2d", make_cells2d), ("nuclei2d_instances", load_nuclei2d_instances)):
        register_source(f"builtin:{name}", dense=True, doc=first_sentence(fn.__doc__), instances=True)(dense_loader(fn))


def _register_metrics() -> None:
    from bakeoff.tasks.metric import Metric, register
    from bakeoff.tasks.segmentation import dense_metric

    name = InstanceSegmentation.name
    for m, hib, doc in (
            ("mean_ap", True, "TP/(TP+FP+FN) averaged over IoU 0.50-0.90, then over images (matched objects)"),
            ("f1", True, "F1 of matched objects at IoU 0.5, averaged over images"),
            ("panoptic_quality", True, "matched IoU / (TP + FP/2 + FN/2) at IoU 0.5, averaged over images"),
            ("count_error", False, "|predicted - true| number of objects per image")):
        register(dense_metric(m, hib, doc), (name,))
    register(Metric("loss", False, True, "the training loss on the validation split"), (name,))


_register_data()
_register_metrics()
