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
