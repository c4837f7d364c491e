"""Image files for the tests: PNGs with a manifest CSV, and a small study over them."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def write_pngs(root: Path, n: int, size: int = 12, seed: int = 0, mode: str = "RGB", signal: bool = False) -> Path:
    """``n`` random 8-bit PNGs under ROOT/img and ROOT/data.csv (path,label); ``signal``: label 1 images
    carry a brighter square, so a network can learn them."""
    rng = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        shape = (size, size, 3) if mode == "RGB" else (size, size)
        x = rng.integers(0, 256 if not signal else 140, shape, dtype=np.uint8)
        if signal and i % 2:
            x[size // 4:size // 2, size // 4:size // 2] += 110
        Image.fromarray(x).save(root / "img" / f"{i}.png")
        rows.append({"path": f"img/{i}.png", "label": i % 2, "group": i // 2})
    with open(root / "data.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["path", "label", "group"])
        w.writeheader()
        w.writerows(rows)
    return root / "data.csv"


def png_study(manifest: Path, **data: Any) -> dict[str, Any]:
    """Two small 2D contenders on the PNGs, 2 epochs with augmentation."""
    return {
        "name": "pngs", "task": "binary_classification",
        "data": {"source": f"csv:{manifest}", "split": {"kind": "holdout", "val_fraction": 0.25, "test_fraction": 0.25},
                 **data},
        "protocol": {"seeds": [0], "epochs": 2, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.003},
                     "augment": ["flip", "rot90"], "select": {"monitor": "val/auroc", "mode": "max"}},
        "contenders": {
            "a": {"model": "bakeoff:se_resnet", "params": {"spatial_dims": 2, "base_channels": 4, "num_blocks": 1}},
            "b": {"model": "bakeoff:se_resnet", "params": {"spatial_dims": 2, "base_channels": 6, "num_blocks": 1}},
        },
        "evaluation": {"primary": "auroc", "baseline": "a", "speed": False, "n_boot": 200},
    }
