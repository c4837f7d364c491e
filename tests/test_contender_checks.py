"""A contender that cannot be built or cannot take the data's shape fails the study before any training:
one line naming the contender, exit code 2, nothing written under runs/."""

from __future__ import annotations

from tests.conftest import write_study
from tests.test_cli import bakeoff


def _run(tmp_path, raw):
    out = tmp_path / "out"
    proc = bakeoff("run", write_study(tmp_path / "s.yaml", raw), "--out", out)
    return proc, out


def test_a_params_typo_fails_before_training_with_the_close_match(tmp_path, tiny_raw):
    tiny_raw["contenders"]["se"]["params"]["base_channel"] = 4
    proc, out = _run(tmp_path, tiny_raw)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "contenders.se" in lines[0] and "'base_channel': did you mean 'base_channels'?" in lines[0]
    assert not list(out.glob("runs/*/*/run.json"))


def test_a_network_that_cannot_take_the_patch_fails_before_training(tmp_path):
    raw = {"name": "seg", "task": "semantic_segmentation",
           "data": {"source": "builtin:organelles2d", "params": {"n": 8, "size": 48, "seed": 0},
                    "split": {"kind": "holdout", "val_fraction": 0.25, "test_fraction": 0.25}},
           "protocol": {"seeds": [0], "epochs": 1, "patch_size": [30, 30], "iterations_per_epoch": 1,
                        "select": {"monitor": "val/mean_dice", "mode": "max"}},
           # strides 2, 2, 2 cannot halve a 30-pixel patch three times and come back to 30
           "contenders": {"unet": {"model": "monai:UNet", "params": {"channels": [4, 8, 16, 32],
                                                                    "strides": [2, 2, 2], "num_res_units": 0}}},
           "evaluation": {"primary": "mean_dice"}}
    proc, out = _run(tmp_path, raw)
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and "contenders.unet: monai:UNet cannot take inputs of shape [1, 1, 30, 30]" in line
    assert not list(out.glob("runs/*/*/run.json"))


def test_the_eta_cost_is_timed_near_the_training_batch_within_a_budget():
    """Per-input forward time at the training batch size (per-input cost falls with the batch, as in training),
    at fewer inputs when one input's pass times the batch would pass the budget; a batch the network refuses
    falls back to one input's time and is never the check's error."""
    import time

    import torch

    from bakeoff.runs.context import StudyContext

    class Slow(torch.nn.Module):  # 20 ms a call plus 1 ms an input
        def __init__(self, refuse_batches: bool = False) -> None:
            super().__init__()
            self.sizes, self.refuse = [], refuse_batches

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.sizes.append(len(x))
            if self.refuse and len(x) > 1:
                raise RuntimeError("batch of one only")
            time.sleep(0.02 + 0.001 * len(x))
            return x

    net = Slow()
    per_input = StudyContext._time_forward(net, (1, 1, 4, 4), batch_size=8)
    assert net.sizes == [1, 8, 8] and 0.0035 < per_input < 0.015  # (20 + 8) ms / 8, not one input's 21 ms
    net = Slow()
    StudyContext._time_forward(net, (1, 1, 4, 4), batch_size=64, budget_s=0.1)
    assert net.sizes[0] == 1 and 2 <= net.sizes[1] == net.sizes[2] <= 4  # 0.1 s at >= 21 ms an input
    net = Slow(refuse_batches=True)
    assert StudyContext._time_forward(net, (1, 1, 4, 4), batch_size=8) > 0.02
