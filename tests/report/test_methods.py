"""The methods paragraph records what the user allowed that changes what the numbers mean."""

from __future__ import annotations

from bakeoff.report.methods import methods_paragraph
from bakeoff.tasks import validate_study


def test_kept_duplicates_and_mask_values_are_stated(tiny_raw):
    tiny_raw["data"]["allow_duplicates"] = True
    twins = [{"id": "a", "part": "test", "duplicate_of": "b", "duplicate_part": "train", "fold": 0}] * 3
    text, _ = methods_paragraph(validate_study(tiny_raw), [], {}, {"n_samples": 60, "exact_duplicates": twins}, None)
    assert "3 samples had a pixel-identical copy in another part of the split and were kept" in text
    assert "data.allow_duplicates" in text and "mask values" not in text
    seg = {"name": "seg", "task": "semantic_segmentation",
           "data": {"source": "builtin:organelles2d", "mask_values": [0, 128, 255]},
           "protocol": {"seeds": [0], "epochs": 1, "patch_size": [32, 32]},
           "contenders": {"unet": {"model": "monai:UNet", "params": {"channels": [4, 8], "strides": [2]}}}}
    text, _ = methods_paragraph(validate_study(seg), [], {}, {"n_samples": 8, "exact_duplicates": []}, None)
    assert "The mask values 0, 128, 255 were read as classes 0, 1, 2 (data.mask_values)." in text
    assert "pixel-identical" not in text
