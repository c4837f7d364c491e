"""The array API people already use: ``create_trainer(name, **kw)``, ``.train``, ``.predict``, ``.save``.

It runs the same training loop, losses, augmentation and checkpoint selection as a study run.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError

from bakeoff.config import ProtocolConfig, format_validation_error
from bakeoff.data.sources import from_arrays
from bakeoff.data.transforms import normalize
from bakeoff.errors import BakeoffError
from bakeoff.models import create_model, resolve
from bakeoff.tasks import get_task
from bakeoff.train.fit import fit, seed_everything
from bakeoff.train.module import BakeoffModule, inference_batch
from bakeoff.utils import atomic_path

FORMAT = "bakeoff.trainer/1"
# Keywords that set the protocol; every other keyword is a model parameter.
_PROTOCOL_KEYS = {"learning_rate": ("optimizer", "lr"), "lr": ("optimizer", "lr"),
                  "weight_decay": ("optimizer", "weight_decay"), "optimizer": ("optimizer", "name"),
                  "schedule": ("schedule", "name"), "loss": ("loss", "name"),
                  "class_weights": ("loss", "class_weights"), "monitor": ("select", "monitor"),
                  "mode": ("select", "mode")}
_PROTOCOL_FIELDS = set(ProtocolConfig.model_fields) - {"seeds"}


class ArrayTrainer:
    """Train, predict and save one model on numpy arrays (X: (N, D, H, W) or (N, C, D, H, W); y: (N,))."""

    def __init__(self, model: str, model_params: dict[str, Any], protocol: ProtocolConfig, *, seed: int = 0,
                 task: str = "binary_classification", num_classes: int = 2, normalize: str = "minmax",
                 spatial_dims: int | None = None) -> None:
        self.model_name = str(resolve(model))
        self.model_params = dict(model_params)
        self.task = get_task(task, num_classes)
        self.protocol = self.task.with_selection(protocol)  # as in a study file: the task's primary
        self.seed = seed
        self.normalize = normalize
        self.spatial_dims = spatial_dims
        self.model: torch.nn.Module | None = None
        self._shape: tuple[int, tuple[int, ...]] | None = None
        self.history: dict[str, list[float]] = {}

    def build_model(self, in_channels: int = 1, input_shape: tuple[int, ...] | None = None) -> torch.nn.Module:
        """Build (or rebuild) the network under this trainer's seed; ``self.model`` is the ``nn.Module``.
        ``train`` builds it from the data's shape, so this is only needed to hold the module before training:
        give ``input_shape`` (spatial, e.g. ``(64, 64)``) or the model parameter ``input_shape``; without
        either, a 3D trainer assumes the zms2 patches (9, 11, 11) and a 2D one cannot guess."""
        if input_shape is None and "input_shape" in self.model_params:
            input_shape = tuple(self.model_params["input_shape"])
        if input_shape is None:
            if self.spatial_dims == 2:
                raise BakeoffError("build_model: the input shape of 2D images is not known before data; expected "
                                   "build_model(input_shape=(H, W)), or call train(...), which builds the model "
                                   "from the data's shape")
            input_shape = (9, 11, 11)
        dims = self.spatial_dims or len(input_shape)
        seed_everything(self.seed, self.protocol.deterministic)
        params = {k: v for k, v in self.model_params.items() if k != "input_shape"}
        self.model = create_model(self.model_name, in_channels=in_channels, num_outputs=self.task.num_outputs,
                                  spatial_dims=dims, input_shape=tuple(input_shape), params=params)
        self._shape = (in_channels, tuple(input_shape))
        return self.model

    def _arrays(self, X: Any, y: Any = None, name: str = "X") -> tuple[np.ndarray, np.ndarray | None]:
        labels = np.zeros(len(X), dtype=np.int64) if y is None else y
        data = from_arrays(X, labels, spatial_dims=self.spatial_dims, num_classes=self.task.num_classes, name=name)
        return normalize(data.X, self.normalize), (None if y is None else data.y)

    def train(self, X_train: Any, y_train: Any, X_val: Any, y_val: Any,
              work_dir: str | Path | None = None) -> dict[str, list[float]]:
        """Fit with checkpoint selection on the validation arrays; returns per-epoch history."""
        Xt, yt = self._arrays(X_train, y_train, "X_train/y_train")
        Xv, yv = self._arrays(X_val, y_val, "X_val/y_val")
        for name, labels in (("y_train", yt), ("y_val", yv)):
            if len(np.unique(labels)) < 2:
                raise BakeoffError(f"{name}: holds only class {np.unique(labels).tolist()}; expected both classes")
        shape = (Xt.shape[1], tuple(Xt.shape[2:]))
        if self.model is None or self._shape != shape:
            if self.model is not None:
                warnings.warn(f"model was built for {self._shape}, data are {shape}: rebuilding", stacklevel=2)
            self.build_model(*shape)
        seed_everything(self.seed, self.protocol.deterministic)
        history: dict[str, list[float]] = {}

        def record(epoch: int, _max: int, metrics: dict[str, float]) -> None:
            history.setdefault("epoch", []).append(epoch)
            for k, v in metrics.items():
                history.setdefault(k.replace("/", "_"), []).append(v)

        with tempfile.TemporaryDirectory(prefix="bakeoff-trainer-") as tmp:
            result = fit(self.task, self.model, self.protocol, Xt, yt, Xv, yv,
                         run_dir=Path(work_dir) if work_dir else Path(tmp), report=record)
        self.model = result.module.model
        self.best_epoch = result.best_epoch
        self.history = history
        return history

    def predict(self, X: Any, batch_size: int | None = None) -> np.ndarray:
        """Probabilities: (N,) of class 1 for binary tasks, (N, K) otherwise."""
        if self.model is None:
            raise BakeoffError("predict: the model is not built or trained; call build_model() or train() first")
        Xn, _ = self._arrays(X)
        module = BakeoffModule(self.model, self.task, torch.nn.Identity(), self.protocol)
        return module.predict_arrays(Xn, batch_size or inference_batch(self.protocol))

    def save(self, path: str | Path) -> None:
        """Weights and everything needed to rebuild; loadable with ``torch.load(weights_only=True)``."""
        if self.model is None:
            raise BakeoffError("save: nothing to save; build or train the model first")
        in_channels, input_shape = self._shape
        state = {"format": FORMAT, "model": self.model_name, "model_params": self.model_params,
                 "protocol": self.protocol.model_dump(mode="json"), "seed": self.seed, "task": self.task.name,
                 "num_classes": self.task.num_classes, "normalize": self.normalize,
                 "spatial_dims": self.spatial_dims, "in_channels": in_channels,
                 "input_shape": list(input_shape), "state_dict": self.model.state_dict()}
        with atomic_path(path) as tmp:  # an interrupted save leaves the previous file, never half a new one
            torch.save(state, tmp)


def create_trainer(model: str, *, seed: int = 0, task: str = "binary_classification", num_classes: int = 2,
                   normalize: str = "minmax", spatial_dims: int | None = None, **kwargs: Any) -> ArrayTrainer:
    """E.g. ``create_trainer('se_resnet', spatial_dims=3, base_channels=32, use_se=True, learning_rate=1e-4,
    batch_size=16, epochs=100)``. Protocol keywords (epochs, batch_size, learning_rate, optimizer, schedule,
    loss, class_weights, augment, ...) set the protocol; the rest are the model's parameters."""
    proto: dict[str, Any] = {}
    model_params: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in _PROTOCOL_KEYS:
            section, field = _PROTOCOL_KEYS[key]
            proto.setdefault(section, {})[field] = value
        elif key in _PROTOCOL_FIELDS:
            proto[key] = value
        else:
            model_params[key] = value
    try:
        protocol = ProtocolConfig.model_validate(proto)
    except ValidationError as exc:
        raise BakeoffError(format_validation_error(exc, "create_trainer")) from None
    return ArrayTrainer(model, model_params, protocol, seed=seed, task=task, num_classes=num_classes,
                        normalize=normalize, spatial_dims=spatial_dims)


def load_trainer(path: str | Path) -> ArrayTrainer:
    """Load a trainer saved with ``ArrayTrainer.save`` (safe loading: weights and plain data only)."""
    path = Path(path)
    if not path.is_file():
        raise BakeoffError(f"{path}: file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any refusal is the same user error
        raise BakeoffError(f"{path}: not a safe bakeoff trainer file ({str(exc).splitlines()[0]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise BakeoffError(f"{path}: not a bakeoff trainer file (expected format {FORMAT})")
    t = ArrayTrainer(state["model"], state["model_params"], ProtocolConfig.model_validate(state["protocol"]),
                     seed=state["seed"], task=state["task"], num_classes=state["num_classes"],
                     normalize=state["normalize"], spatial_dims=state["spatial_dims"])
    t.build_model(state["in_channels"], tuple(state["input_shape"]))
    t.model.load_state_dict(state["state_dict"])
    return t
