"""How a run trains and predicts, chosen from what its task declares: a task describes (its data units,
outputs, metrics, ``dense`` or not); the strategy here acts. Two strategies:

* ``SAMPLES``: whole samples held in memory, shuffled batches (``train.fit``), predicted in batches;
* ``PATCHES``: random (class-balanced) patches per epoch, whole images predicted by sliding window
  (``train.dense``), for segmentation and particle picking.

``runs/`` calls ``strategy_for(task)`` and never branches on the task itself."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bakeoff.errors import BakeoffError
from bakeoff.tasks import Task
from bakeoff.tasks.segmentation import mask_centres
from bakeoff.train.dense import DenseModule, fit_dense, patch_size_for
from bakeoff.train.fit import fit
from bakeoff.train.loop import CHECKPOINT_EVERY_S
from bakeoff.train.module import BakeoffModule, inference_batch


class SampleStrategy:
    """Samples in memory: the network sees whole samples."""

    name = "samples"
    unit = "sample"  # what one input of the network is

    def check_protocol(self, task: Task, data: Any, p: Any, where: str) -> None:
        """Settings this strategy cannot honour, refused before any training."""
        if p.patch_size is not None or p.iterations_per_epoch is not None:
            raise BakeoffError(f"{where}.patch_size / iterations_per_epoch: only for segmentation and particle "
                               f"picking; {task.name} trains on whole samples")

    def output_shape(self, input_shape: tuple[int, ...], outputs: int) -> tuple[str, Any]:
        """What one input of ``input_shape`` must give, in words, and a test of the shape it gave: (1, K)
        (a single logit may come as (1,) or (1, 1))."""
        return (f"(1, {outputs})", lambda got: got is not None and len(got) >= 1 and got[0] == 1
                and int(np.prod(got[1:])) == outputs)

    def input_shape(self, task: Task, data: Any, protocol: Any, train_idx: np.ndarray) -> tuple[int, ...]:
        return data.input_shape

    def fit(self, task: Task, model: Any, protocol: Any, data: Any, train_idx: np.ndarray, val_idx: np.ndarray, *,
            run_dir: Any, seed: int, threshold: float, report: Any = None, checkpoint_every_s: float = CHECKPOINT_EVERY_S) -> Any:
        return fit(task, model, protocol, data.X[train_idx], data.y[train_idx], data.X[val_idx], data.y[val_idx],
                   run_dir=run_dir, threshold=threshold, report=report, checkpoint_every_s=checkpoint_every_s)

    def module_for(self, task: Task, model: Any, protocol: Any, input_shape: tuple[int, ...], threshold: float) -> Any:
        """An (untrained) module around ``model`` that predicts as a trained one does."""
        return BakeoffModule(model, task, torch.nn.Identity(), protocol, threshold)

    def predict_parts(self, task: Task, module: Any, data: Any, val_idx: np.ndarray, test_idx: np.ndarray,
                      protocol: Any) -> dict[str, dict[str, Any]]:
        """The saved form of the validation and test predictions, ``{part: {ids, y, probs}}``: validation as
        the selected epoch predicted it (no second pass; made again where the module did not keep it: a
        module built for ``bakeoff evaluate``, or validation split across processes), test made once."""
        known = getattr(module, "selected_val", None)
        if known is not None and not (len(known[1]) == len(val_idx) and np.array_equal(known[1], data.y[val_idx])):
            known = None
        return {part: {"ids": data.ids[idx], "y": data.y[idx],
                       "probs": known[0] if part == "val" and known is not None else
                       module.predict_arrays(data.X[idx], inference_batch(protocol, data.X.shape[1:]))}
                for part, idx in (("val", val_idx), ("test", test_idx))}


class PatchStrategy:
    """Images read patch by patch: random patches in training, whole images predicted."""

    name = "patches"
    unit = "patch"

    def check_protocol(self, task: Task, data: Any, p: Any, where: str) -> None:
        if isinstance(p.devices, int) and p.devices > 1:
            raise BakeoffError(f"{where}.devices: {p.devices} devices per run are for in-memory classification "
                               f"studies; expected 1 for {task.name}")
        if p.num_nodes > 1:
            raise BakeoffError(f"{where}.num_nodes: {p.num_nodes} nodes per run are for in-memory classification "
                               f"studies; expected 1 for {task.name}")
        if "rotate" in p.augment:
            raise BakeoffError(f"{where}.augment: 'rotate' is not available for segmentation (masks would need "
                               f"nearest-neighbour resampling); expected flip and/or rot90")
        if p.patch_size is not None and len(p.patch_size) != data.spatial_dims:
            raise BakeoffError(f"{where}.patch_size: {p.patch_size} has {len(p.patch_size)} values; expected "
                               f"{data.spatial_dims} for {data.spatial_dims}D images")

    def output_shape(self, input_shape: tuple[int, ...], outputs: int) -> tuple[str, Any]:
        """(1, K, *spatial): one score map per class, the size of the input."""
        want = (1, outputs, *input_shape[2:])
        return f"({', '.join(map(str, want))})", lambda got: got == want

    def input_shape(self, task: Task, data: Any, protocol: Any, train_idx: np.ndarray) -> tuple[int, ...]:
        return patch_size_for(data, protocol, train_idx)

    def fit(self, task: Task, model: Any, protocol: Any, data: Any, train_idx: np.ndarray, val_idx: np.ndarray, *,
            run_dir: Any, seed: int, threshold: float, report: Any = None, checkpoint_every_s: float = CHECKPOINT_EVERY_S) -> Any:
        return fit_dense(task, model, protocol, data, train_idx, val_idx, run_dir=run_dir, seed=seed, report=report,
                         checkpoint_every_s=checkpoint_every_s)

    def module_for(self, task: Task, model: Any, protocol: Any, input_shape: tuple[int, ...], threshold: float) -> Any:
        """An (untrained) module that predicts as a trained one does: with the run's loss where the task turns
        outputs into predictions through it (``Task.decodes_with_loss``: instance segmentation's objects)."""
        from bakeoff.losses import build_loss

        loss = build_loss(protocol.loss, task, None) if task.decodes_with_loss else torch.nn.Identity()
        return DenseModule(model, task, loss, protocol, input_shape)

    def predict_parts(self, task: Task, module: Any, data: Any, val_idx: np.ndarray, test_idx: np.ndarray,
                      protocol: Any) -> dict[str, dict[str, Any]]:
        """The validation images as the selected epoch predicted them (no second pass); the test part made
        once, or taken from validation when the validation images double as the test set."""
        preds = {"val": dense_predictions(module, data, val_idx, getattr(module, "selected_val", None))}
        preds["test"] = dense_predictions(module, data, test_idx,
                                          preds["val"] if np.array_equal(val_idx, test_idx) else None)
        return preds


def dense_predictions(module: Any, data: Any, idx: np.ndarray, known: dict[str, Any] | None = None) -> dict[str, Any]:
    """Whole-image label maps (and particle probabilities) with the truth they are scored against;
    ``known``: these images' predictions already made by this module (not made again)."""
    out = dict(known) if known is not None and len(known["pred"]) == len(idx) else module.predict_images(data, idx)
    out["ids"] = data.ids[idx]
    out["class_names"] = list(data.class_names or [f"class{k}" for k in range(data.num_classes)])
    out["spacing"] = tuple(data.spacing)
    out["y"] = [_narrowest(data.mask(int(i))) for i in idx]
    out["centres"] = [np.asarray(data.centres[int(i)], np.float32) if data.centres is not None
                      else mask_centres(m) for i, m in zip(idx, out["y"])]
    return out


def _narrowest(mask: np.ndarray) -> np.ndarray:
    """A mask in the narrowest unsigned type that holds its values (uint8 for classes; object ids above 255
    keep the bits they need)."""
    return mask.astype(np.min_scalar_type(max(int(mask.max(initial=0)), 0)))


SAMPLES, PATCHES = SampleStrategy(), PatchStrategy()


def strategy_for(task: Task) -> SampleStrategy | PatchStrategy:
    """The strategy a task's declaration calls for: per-pixel tasks train on patches."""
    return PATCHES if task.dense else SAMPLES
