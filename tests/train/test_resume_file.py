"""The resume checkpoint loads with ``torch.load(weights_only=True)``, like every checkpoint bakeoff reads, and
brings every random stream (torch, NumPy, Python) and a dense module's selected predictions back exactly."""

from __future__ import annotations

import random

import numpy as np
import torch

from bakeoff.config import ProtocolConfig
from bakeoff.train.dense import DenseModule
from bakeoff.train.loop import (
    LoopState,
    _get_rng,
    _set_rng,
    load_resume,
    make_fabric,
    save_atomic,
    save_resume,
)


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
    net = torch.nn.Linear(2, 1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert load_resume(make_fabric(ProtocolConfig()), path, {"model": net}, record) is None
    assert "unreadable" in record["resume_discarded"] and not path.exists()
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # nothing restored


def test_the_loop_state_and_its_objects_round_trip_through_fabric(tmp_path):
    """``save_resume``/``load_resume`` (Fabric's save/load with the atomic, weights-only checkpoint IO): the
    one definition of the resume file; a file saved without a schedule is refused by a run that has one."""
    fabric = make_fabric(ProtocolConfig())
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    state = LoopState(epoch=2, global_step=30, seen=480, lr=0.1, train_time=1.5, select=(0.9, 1, net.state_dict()),
                      stopper=(0.9, 1), module={"k": 1}, logged=[({"val/auroc": 0.9}, 10)], rng=_get_rng(False))
    path = tmp_path / "last.ckpt"
    save_resume(fabric, path, state, {"model": net, "optimizer": opt})
    net2 = torch.nn.Linear(3, 2)
    opt2 = torch.optim.Adam(net2.parameters(), lr=0.1)
    back = load_resume(fabric, path, {"model": net2, "optimizer": opt2}, {})
    assert back is not None and (back.epoch, back.global_step, back.seen, back.logged) == (2, 30, 480, state.logged)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), net2.state_dict().values()))
    assert opt2.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]
    sched = torch.optim.lr_scheduler.StepLR(opt2, 1)
    record: dict = {}
    assert load_resume(fabric, path, {"model": net2, "optimizer": opt2, "scheduler": sched}, record) is None
    assert "scheduler saved without a state" in record["resume_discarded"]


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))
