"""The resume checkpoint loads with ``torch.load(weights_only=True)``, like every checkpoint bakeoff reads, and
brings every random stream (torch, NumPy, Python) and a dense module's selected predictions back exactly."""

from __future__ import annotations

import random

import numpy as np
import torch

from bakeoff.train.dense import DenseModule
from bakeoff.train.loop import _get_rng, _set_rng, read_resume, save_atomic


def test_random_states_survive_a_weights_only_round_trip(tmp_path):
    torch.manual_seed(3)
    np.random.seed(4)
    random.seed(5)
    np.random.normal()  # a cached Gaussian in NumPy's legacy state
    state = _get_rng(cuda=False)
    expect = (torch.rand(3), np.random.normal(size=3), np.random.randint(0, 10**9), random.random())
    path = tmp_path / "last.ckpt"
    save_atomic(path, {"rng": state})
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    _set_rng(loaded["rng"])
    got = (torch.rand(3), np.random.normal(size=3), np.random.randint(0, 10**9), random.random())
    assert torch.equal(expect[0], got[0]) and np.array_equal(expect[1], got[1])
    assert expect[2:] == got[2:]


def test_a_dense_modules_selected_predictions_survive_it(tmp_path):
    mod = DenseModule.__new__(DenseModule)  # only its resume state is exercised
    pred = [np.arange(12, dtype=np.uint8).reshape(3, 4), np.zeros((2, 2), np.uint8)]
    prob = [None, np.full((2, 2), 0.25, np.float16)]
    mod.selected_val = {"pred": pred, "prob": prob}
    path = tmp_path / "last.ckpt"
    save_atomic(path, {"module": mod.resume_state()})
    back = DenseModule.__new__(DenseModule)
    back.load_resume_state(torch.load(path, map_location="cpu", weights_only=True)["module"])
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(back.selected_val["pred"], pred))
    assert back.selected_val["prob"][0] is None and np.array_equal(back.selected_val["prob"][1], prob[1])


def test_a_resume_file_holding_arbitrary_objects_is_discarded_not_run(tmp_path):
    path = tmp_path / "last.ckpt"
    torch.save({"epoch": 0, "payload": _Evil()}, path)
    record: dict = {}
    assert read_resume(path, record) is None
    assert "unreadable" in record["resume_discarded"] and not path.exists()


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))
