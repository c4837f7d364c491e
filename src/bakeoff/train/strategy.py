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

from bakeoff.tasks import Task
from bakeoff.tasks.segmentation import mask_centres
from bakeoff.train.dense import DenseModule, fit_dense, patch_size_for
from bakeoff.train.fit import fit
from bakeoff.train.module import BakeoffModule, inference_batch


class SampleStrategy:
    """Samples in memory: the network sees whole samples."""

    name = "samples"

    def input_shape(self, task: Task, data: Any, protocol: Any, train_idx: np.ndarray) -> tuple[int, ...]:
        return data.input_shape

    def fit(self, task: Task, model: Any, protocol: Any, data: Any, train_idx: np.ndarray, val_idx: np.ndarray, *,
            run_dir: Any, seed: int, threshold: float, report: Any = None) -> Any:
        return fit(task, model, protocol, data.X[train_idx], data.y[train_idx], data.X[val_idx], data.y[val_idx],
                   run_dir=run_dir, threshold=threshold, report=report)

    def module_for(self, task: Task, model: Any, protocol: Any, input_shape: tuple[int, ...], threshold: float) -> Any:
        """An (untrained) module around ``model`` that predicts as a trained one does."""
        return BakeoffModule(model, task, torch.nn.Identity(), protocol, threshold)

    def predict_parts(self, task: Task, module: Any, data: Any, val_idx: np.ndarray, test_idx: np.ndarray,
                      protocol: Any) -> dict[str, dict[str, Any]]:
        """The saved form of the validation and test predictions, ``{part: {ids, y, probs}}``."""
        return {part: {"ids": data.ids[idx], "y": data.y[idx],
                       "probs": module.predict_arrays(data.X[idx], inference_batch(protocol))}
                for part, idx in (("val", val_idx), ("test", test_idx))}


class PatchStrategy:
    """Images read patch by patch: random patches in training, whole images predicted."""

    name = "patches"

    def input_shape(self, task: Task, data: Any, protocol: Any, train_idx: np.ndarray) -> tuple[int, ...]:
        return patch_size_for(data, protocol, train_idx)

    def fit(self, task: Task, model: Any, protocol: Any, data: Any, train_idx: np.ndarray, val_idx: np.ndarray, *,
            run_dir: Any, seed: int, threshold: float, report: Any = None) -> Any:
        return fit_dense(task, model, protocol, data, train_idx, val_idx, run_dir=run_dir, seed=seed, report=report)

    def module_for(self, task: Task, model: Any, protocol: Any, input_shape: tuple[int, ...], threshold: float) -> Any:
        return DenseModule(model, task, torch.nn.Identity(), protocol, input_shape)

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
    out["y"] = [data.mask(int(i)).astype(np.uint8) for i in idx]
    out["centres"] = [np.asarray(data.centres[int(i)], np.float32) if data.centres is not None
                      else mask_centres(m) for i, m in zip(idx, out["y"])]
    return out


SAMPLES, PATCHES = SampleStrategy(), PatchStrategy()


def strategy_for(task: Task) -> SampleStrategy | PatchStrategy:
    """The strategy a task's declaration calls for: per-pixel tasks train on patches."""
    return PATCHES if task.dense else SAMPLES
