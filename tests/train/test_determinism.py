"""The determinism policy: CPU reruns bit-identical, an op without a deterministic kernel never crashes a run
under the default, and what each run got is recorded in run.json and the fairness audit."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn

from bakeoff.api import Study
from bakeoff.config import ProtocolConfig
from bakeoff.data.spots3d import make_spots3d
from bakeoff.data.transforms import normalize
from bakeoff.tasks import get_task
from bakeoff.train.fit import fit, seed_everything


class PutNet(nn.Module):
    """A linear model whose forward calls ``Tensor.put_``, which has no deterministic CPU kernel."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(9 * 11 * 11, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.zeros(2).put_(torch.tensor([0, 0]), torch.tensor([1.0, 2.0]))
        return self.fc(x.flatten(1))


@pytest.fixture(scope="module")
def arrays():
    d = make_spots3d(n=120, positive_fraction=0.4, snr=5.0, seed=2)
    X = normalize(d["X"][:, None], "minmax")
    return X[:80], d["y"][:80], X[80:], d["y"][80:]


def _fit(arrays, policy):
    seed_everything(0)
    return fit(get_task("binary_classification"), PutNet(), ProtocolConfig(epochs=1, deterministic=policy),
               *arrays, run_dir=None)


def _nondet_warnings(caught):
    return [w for w in caught if "does not have a deterministic implementation" in str(w.message)]


def test_auto_runs_an_op_without_a_deterministic_kernel_and_records_it(arrays):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _fit(arrays, "auto")
    assert result.training["determinism"] == {"policy": "auto", "mode": "warn", "nondeterministic_ops": ["put_"],
                                              "fill_uninitialized_memory": False}
    assert not _nondet_warnings(caught)  # recorded quietly


def test_warn_shows_pytorchs_warning(arrays):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _fit(arrays, "warn")
    assert result.training["determinism"]["mode"] == "warn"
    assert _nondet_warnings(caught)


def test_true_is_strict_and_false_is_off(arrays):
    with pytest.raises(RuntimeError, match="put_ does not have a deterministic implementation"):
        _fit(arrays, True)
    result = _fit(arrays, False)
    assert result.training["determinism"] == {"policy": "false", "mode": "off", "nondeterministic_ops": [],
                                              "fill_uninitialized_memory": False}
    assert not torch.are_deterministic_algorithms_enabled()


def test_cpu_reruns_are_bit_identical_and_recorded(tmp_path, tiny_raw):
    tiny_raw["protocol"].update(seeds=[0], epochs=2)
    tiny_raw["evaluation"]["speed"] = False
    out = []
    for name in ("a", "b"):
        Study.from_dict(tiny_raw).run(tmp_path / name)
        out.append(tmp_path / name)
    runs = sorted(p.relative_to(out[0]) for p in out[0].glob("runs/*/*/predictions.npz"))
    assert len(runs) == 2
    for rel in runs:
        a, b = np.load(out[0] / rel), np.load(out[1] / rel)
        for key in a.files:
            if a[key].dtype.kind in "fiub":
                assert np.array_equal(a[key], b[key]), (rel, key)
        info = json.loads((out[0] / rel.parent / "run.json").read_text())
        assert info["training"]["determinism"] == {"policy": "auto", "mode": "strict", "nondeterministic_ops": [],
                                                   "fill_uninitialized_memory": False}
        assert info["training"]["data_on_device"] is True
        logs = [(o / rel.parent / "logs" / "csv" / "metrics.csv").read_text() for o in out]
        assert logs[0] == logs[1]
    fairness = json.loads((out[0] / "comparison.json").read_text())["fairness"]
    assert fairness["identical"]["training.determinism.mode"] == "strict"
    assert fairness["fair"]


def test_compile_reports_its_time_apart_and_trains(arrays):
    """``protocol.compile``: torch.compile (inductor) on the same loop; the first steps' compile time is
    recorded apart from the training time."""
    from bakeoff.models import create_model

    seed_everything(0)
    model = create_model("simple_cnn3d", in_channels=1, num_outputs=1, spatial_dims=3, input_shape=(9, 11, 11))
    result = fit(get_task("binary_classification"), model, ProtocolConfig(epochs=2, compile=True), *arrays,
                 run_dir=None)
    assert result.training["compile"] is True and result.training["compile_time_s"] > 0
    assert result.epochs_trained == 2 and result.best_score is not None
    assert not any(k.startswith("_orig_mod") for k in result.module.model.state_dict())
