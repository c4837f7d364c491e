"""A run on several devices: DDP over spawned processes (gloo on CPU here), the protocol's batch size kept
as the global batch, recorded in run.json and the fairness audit."""

from __future__ import annotations

import json

import pytest
import torch

from bakeoff.api import Study
from bakeoff.errors import BakeoffError


def test_a_two_process_ddp_run_keeps_the_global_batch(tmp_path, tiny_raw):
    tiny_raw["protocol"].update(seeds=[0], epochs=2)
    tiny_raw["evaluation"].update(speed=False, n_boot=200)
    tiny_raw["contenders"]["se"]["protocol"] = {"devices": 2, "accelerator": "cpu"}
    report = Study.from_dict(tiny_raw).run(tmp_path / "o")
    assert (report.results["status"] == "done").all(), report.results.get("error")
    info = json.loads((tmp_path / "o" / "runs" / "se" / "seed0-fold0" / "run.json").read_text())
    t = info["training"]
    assert t["strategy"] == "ddp_spawn" and t["world_size"] == 2
    assert t["per_device_batch"] == 16 and t["global_batch"] == 32
    assert info["epochs_trained"] == 2 and 0.5 < report.results.set_index("contender").loc["se", "test_auroc"]
    assert (tmp_path / "o" / "runs" / "se" / "seed0-fold0" / "checkpoints" / "best.ckpt").is_file()
    progress = json.loads((tmp_path / "o" / "runs" / "se" / "seed0-fold0" / "progress.json").read_text())
    assert progress["epoch"] == progress["epochs"] == 2
    fairness = json.loads((tmp_path / "o" / "comparison.json").read_text())["fairness"]
    assert "world_size" in json.dumps(fairness)  # the audit names the difference in devices


def test_several_devices_for_a_dense_task_are_refused_before_training(tiny_raw):
    seg = {"name": "seg", "task": "semantic_segmentation",
           "data": {"source": "builtin:organelles2d", "params": {"n": 6}},
           "protocol": {"epochs": 1, "batch_size": 2, "patch_size": [32, 32], "devices": 2, "accelerator": "cpu"},
           "contenders": {"unet": {"model": "monai:UNet", "params": {"channels": [4, 8], "strides": [2]}}}}
    with pytest.raises(BakeoffError, match="protocol.devices: 2 devices per run are for in-memory classification"):
        Study.from_dict(seg).plan()


def test_nodes_per_run_need_slurm_and_gpus_are_checked_where_the_runs_train(tiny_raw):
    tiny_raw["protocol"]["num_nodes"] = 2
    with pytest.raises(BakeoffError, match="protocol.num_nodes: 2 nodes per run need SLURM"):
        Study.from_dict(tiny_raw).plan()
    # submitted from a login node without a GPU: the GPUs are the cluster's, not this machine's
    tiny_raw["protocol"].update(num_nodes=1, accelerator="gpu")
    tiny_raw["execution"] = {"backend": "slurm", "gpus_per_run": 1}
    Study.from_dict(tiny_raw).plan()
    tiny_raw["execution"] = {"backend": "local"}
    if torch.cuda.is_available():
        return
    with pytest.raises(BakeoffError, match="protocol.accelerator: 'gpu' requested but no CUDA device"):
        Study.from_dict(tiny_raw).plan()
