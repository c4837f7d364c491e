"""Protocol settings reach Lightning: schedules, early stopping, clipping, optimizers, selection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bakeoff.api import Study
from bakeoff.config import ProtocolConfig
from bakeoff.data.spots3d import make_spots3d
from bakeoff.data.transforms import normalize
from bakeoff.models import create_model
from bakeoff.tasks import get_task
from bakeoff.train.fit import fit, seed_everything

SHAPE = dict(in_channels=1, num_outputs=1, spatial_dims=3, input_shape=(9, 11, 11))


@pytest.fixture(scope="module")
def arrays():
    d = make_spots3d(n=200, positive_fraction=0.3, snr=5.0, seed=3)
    X = normalize(d["X"][:, None], "minmax")
    return X[:140], d["y"][:140], X[140:], d["y"][140:]


def _fit(arrays, tmp_path, **protocol):
    Xt, yt, Xv, yv = arrays
    seed_everything(0)
    model = create_model("simple_cnn3d", **SHAPE)
    history: list[dict] = []
    result = fit(get_task("binary_classification"), model, ProtocolConfig(**protocol), Xt, yt, Xv, yv,
                 run_dir=tmp_path, report=lambda e, m, d: history.append(d))
    return result, history


def test_onecycle_steps_per_batch_and_cosine_per_epoch(arrays, tmp_path):
    _, hist = _fit(arrays, tmp_path / "a", epochs=4, batch_size=32, schedule={"name": "onecycle"},
                   optimizer={"name": "adamw", "lr": 0.01})
    lrs = [h["lr"] for h in hist]
    assert max(lrs) <= 0.01 + 1e-9 and lrs[-1] < 0.05 * 0.01  # warmed up, then annealed towards 0
    _, hist = _fit(arrays, tmp_path / "b", epochs=4, schedule={"name": "cosine"},
                   optimizer={"name": "sgd", "lr": 0.1})
    # the learning rate logged for an epoch is the one its steps used: 0.1 in the first epoch
    expected = [0.1 * (1 + np.cos(np.pi * e / 4)) / 2 for e in range(4)]
    np.testing.assert_allclose([h["lr"] for h in hist], expected, rtol=1e-6)


def test_early_stopping_and_best_epoch(arrays, tmp_path):
    result, hist = _fit(arrays, tmp_path, epochs=30, optimizer={"lr": 1e-7},
                        early_stopping={"patience": 2, "min_delta": 0.01}, select={"monitor": "val/loss", "mode": "min"})
    assert result.epochs_trained < 30
    losses = [h["val/loss"] for h in hist]
    assert result.best_epoch == int(np.argmin(losses)) + 1
    assert result.best_score == pytest.approx(min(losses), rel=1e-6)


def test_best_checkpoint_weights_are_restored(arrays, tmp_path):
    import torch

    result, hist = _fit(arrays, tmp_path, epochs=3, select={"monitor": "val/auroc", "mode": "max"})
    state = torch.load(result.best_path, weights_only=True)["state_dict"]
    assert set(state) == {f"model.{k}" for k in result.module.model.state_dict()}
    for k, v in result.module.model.state_dict().items():
        assert torch.equal(state[f"model.{k}"], v), k
    assert result.best_score == pytest.approx(max(h["val/auroc"] for h in hist), rel=1e-6)


def test_gradient_clipping_runs(arrays, tmp_path):
    result, _ = _fit(arrays, tmp_path, epochs=1, gradient_clip=0.01)
    assert result.epochs_trained == 1


def test_kfold_study_through_the_api(tmp_path, tiny_raw):
    tiny_raw["data"]["split"] = {"kind": "kfold", "folds": 3, "val_fraction": 0.25}
    tiny_raw["protocol"]["seeds"] = [0]
    tiny_raw["protocol"]["epochs"] = 1
    tiny_raw["evaluation"]["speed"] = False
    study = Study.from_dict(tiny_raw)
    runs = study.plan()
    assert len(runs) == 2 * 3 and len({r.hash for r in runs}) == 6
    report = study.run(tmp_path / "out")
    table = report.table()
    assert list(table.index) == ["cnn", "se"]
    assert {"test_auroc_mean", "test_auroc_std", "n_parameters_mean"} <= set(table.columns)
    df = pd.read_csv(tmp_path / "out" / "results.csv")
    assert sorted(df["fold"].unique()) == [0, 1, 2]
    test_ids = [set(np.load(tmp_path / "out" / "runs" / "cnn" / f"seed0-fold{k}" / "predictions.npz")["test_ids"])
                for k in range(3)]
    assert not (test_ids[0] & test_ids[1]) and len(set.union(*test_ids)) == 240


@pytest.mark.parametrize("loss", ["bce_balanced", "balanced_softmax_tversky"])
def test_the_loss_moves_with_the_network_to_the_training_device(loss):
    """Found on an H100 (CPU hides it): a class-weighted BCE's weights and the balanced softmax's log prior
    stayed on the CPU while the network went to CUDA, and every such run failed at its first step.
    ``place`` moves everything the training module owns; checked here with the meta device."""
    import torch

    from bakeoff.losses import BalancedSoftmaxTversky, WeightedBCE
    from bakeoff.train.loop import place
    from bakeoff.train.module import BakeoffModule

    net = torch.nn.Conv3d(1, 2, 3)
    loss_fn = (WeightedBCE(np.array([0.5, 2.0])) if loss == "bce_balanced"
               else BalancedSoftmaxTversky(np.array([0.9, 0.1]), 1.0, 0.3, 0.7, False))
    module = BakeoffModule(net, None, loss_fn, ProtocolConfig())  # type: ignore[arg-type]
    meta = torch.device("meta")
    place(module, net, meta, channels_last=False)
    tensors = dict(module.named_parameters()) | dict(module.named_buffers())
    assert tensors and all(t.device == meta for t in tensors.values()), {k: t.device for k, t in tensors.items()}


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="the probe is only dropped without a GPU")
def test_no_nvml_probe_per_optimizer_step_without_a_gpu(arrays, tmp_path, monkeypatch):
    """Lightning's import sets PYTORCH_NVML_BASED_CUDA_CHECK=1; without a GPU torch then loaded NVML on every
    Adam step (8 % of a small CNN's step on CPU). A run must not probe per step, and must leave the
    environment as it found it."""
    import os

    import torch

    calls = []
    real = torch.cuda._raw_device_count_nvml
    monkeypatch.setattr(torch.cuda, "_raw_device_count_nvml", lambda: calls.append(1) or real())
    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    _fit(arrays, tmp_path, epochs=2, batch_size=16, optimizer={"name": "adam"})  # 18 steps
    assert len(calls) <= 5, f"{len(calls)} NVML probes for 18 optimizer steps"  # set-up: 3
    assert os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] == "1"
