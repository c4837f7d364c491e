"""The selected epoch's validation predictions are the saved ones: predicting the images again after
training gives exactly the same label maps and probabilities (so the second pass is skipped), at 32-bit
and at mixed precision."""

from __future__ import annotations

import numpy as np
import pytest

from bakeoff.config import ProtocolConfig
from bakeoff.data.seg_builtin import make_cryoem2d
from bakeoff.data.segdata import from_image_arrays
from bakeoff.models import create_model
from bakeoff.tasks import get_task
from bakeoff.tasks.segmentation import DenseSettings
from bakeoff.train.dense import fit_dense
from bakeoff.train.fit import seed_everything


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_selected_validation_predictions_equal_a_fresh_prediction(precision):
    d = make_cryoem2d(n=8, size=48, seed=0)
    data = from_image_arrays(d["images"], d["masks"], num_classes=2, class_names=d["class_names"],
                             centres=d.get("centres"))
    data.normalize = "zscore"
    data.check()
    task = get_task("particle_picking", 2, DenseSettings(["background", "particle"], boundary=False))
    protocol = ProtocolConfig(epochs=3, batch_size=4, patch_size=[32, 32], iterations_per_epoch=3,
                              precision=precision, select={"monitor": "val/dice", "mode": "max"})
    seed_everything(0)
    model = create_model("monai:UNet", in_channels=1, num_outputs=2, spatial_dims=2, input_shape=(32, 32),
                         params={"channels": [4, 8], "strides": [2], "num_res_units": 0})
    val = np.arange(5, 8)
    result = fit_dense(task, model, protocol, data, np.arange(5), val, run_dir=None, seed=0)
    kept = result.module.selected_val
    again = result.module.predict_images(data, val)
    assert len(kept["pred"]) == 3
    for a, b in zip(kept["pred"], again["pred"]):
        assert np.array_equal(a, b)
    for a, b in zip(kept["prob"], again["prob"]):
        assert a.dtype == b.dtype == np.float16 and np.array_equal(a, b)
