"""Write scikit-learn's handwritten digits (1,797 real 8 x 8 scans, 10 classes) as PNG files plus a fold
CSV, the layout of the fold-CSV studies people run on retinal or histology images.

    python examples/make_digits.py [OUT_DIR]     (default: examples/digits)

OUT_DIR/folds.csv has columns path,label,fold,split: 20% of the images (stratified) are the test set
(split = test); the rest are spread over 5 stratified folds (split = train).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import StratifiedKFold, train_test_split


def main(out: Path) -> Path:
    d = load_digits()
    images = (d.images / 16 * 255).round().astype(np.uint8)
    idx = np.arange(len(images))
    rest, test = train_test_split(idx, test_size=0.2, stratify=d.target, random_state=0)
    fold = np.full(len(images), -1)
    for k, (_, f) in enumerate(StratifiedKFold(5, shuffle=True, random_state=0).split(rest, d.target[rest])):
        fold[rest[f]] = k
    (out / "images").mkdir(parents=True, exist_ok=True)
    test_set = set(test.tolist())
    with open(out / "folds.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "fold", "split"])
        for i in idx:
            name = f"images/digit{i:04d}.png"
            Image.fromarray(images[i], mode="L").save(out / name)
            w.writerow([name, int(d.target[i]), int(fold[i]) if i not in test_set else "", "test" if i in test_set else "train"])
    return out / "folds.csv"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "digits"
    print(main(target))
