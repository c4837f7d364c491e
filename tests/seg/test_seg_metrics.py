"""Dense metrics against MONAI / torchmetrics on the same arrays; empty-class conventions; the particle
matcher on constructed cases; the image-level bootstrap and permutation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.metrics import DiceMetric, MeanIoU, compute_hausdorff_distance, compute_surface_dice
from torchmetrics.functional.segmentation import dice_score

from bakeoff.tasks.segmentation import (
    DenseSettings,
    ParticlePicking,
    SemanticSegmentation,
    aggregate,
    find_particles,
    match_particles,
)

K = 4


def _onehot(a):
    return torch.from_numpy(np.eye(K)[a]).permute(2, 0, 1)[None].float()


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    trues = [rng.integers(0, K, (24, 20)) for _ in range(4)]
    preds = [np.where(rng.random(t.shape) < 0.7, t, rng.integers(0, K, t.shape)) for t in trues]
    trues[0][trues[0] == 3] = 0
    preds[0][preds[0] == 3] = 0  # class 3 absent from both truth and prediction of image 0
    return preds, trues


def test_per_class_dice_and_iou_match_monai(images):
    preds, trues = images
    task = SemanticSegmentation(K, DenseSettings(list("abcd"), include_background=True, boundary=False))
    m, cm = task.evaluate_part({"pred": preds, "y": trues})
    P, T = torch.cat([_onehot(p) for p in preds]), torch.cat([_onehot(t) for t in trues])
    dice = DiceMetric(include_background=True, reduction="none", ignore_empty=True)(P, T)
    iou = MeanIoU(include_background=True, reduction="none", ignore_empty=True)(P, T)
    assert torch.isnan(dice[0, 3])  # MONAI agrees that class 3 is undefined in image 0
    for k, name in enumerate("abcd"):
        assert m[f"dice_{name}"] == pytest.approx(float(torch.nanmean(dice[:, k])), abs=1e-6)
        assert m[f"iou_{name}"] == pytest.approx(float(torch.nanmean(iou[:, k])), abs=1e-6)
    assert m["n_undefined_dice_d"] == 1
    assert m["mean_dice"] == pytest.approx(float(torch.nanmean(dice, 0).mean()), abs=1e-6)
    # torchmetrics' per-image macro Dice, for images where every class is present
    tm = dice_score(P[1:].long(), T[1:].long(), K, include_background=True, average="none", input_format="one-hot")
    one = SemanticSegmentation(K, DenseSettings(list("abcd"), include_background=True, boundary=False))
    per = one.evaluate_part({"pred": preds[1:], "y": trues[1:]})[0]
    np.testing.assert_allclose([per[f"dice_{n}"] for n in "abcd"], tm.mean(0).numpy(), atol=1e-6)
    assert cm.sum() == sum(t.size for t in trues)
    assert m["pixel_accuracy"] == pytest.approx(np.trace(cm) / cm.sum())


def test_background_excluded_by_default(images):
    preds, trues = images
    m = SemanticSegmentation(K, DenseSettings(list("abcd"), boundary=False)).evaluate_part({"pred": preds, "y": trues})[0]
    assert m["mean_dice"] == pytest.approx(np.nanmean([m["dice_b"], m["dice_c"], m["dice_d"]]))


def test_hd95_and_nsd_match_monai_with_spacing(images):
    preds, trues = images
    spacing = (2.0, 0.5)
    task = SemanticSegmentation(K, DenseSettings(list("abcd"), include_background=True, spacing=spacing,
                                                 nsd_tolerance=1.0))
    m, _ = task.evaluate_part({"pred": preds[1:], "y": trues[1:]})
    P, T = torch.cat([_onehot(p) for p in preds[1:]]), torch.cat([_onehot(t) for t in trues[1:]])
    hd = compute_hausdorff_distance(P, T, include_background=True, percentile=95, spacing=list(spacing))
    nsd = compute_surface_dice(P, T, [1.0] * K, include_background=True, spacing=list(spacing))
    for k, name in enumerate("abcd"):
        assert m[f"hd95_{name}"] == pytest.approx(float(hd[:, k].mean()), rel=1e-6)
        assert m[f"nsd_{name}"] == pytest.approx(float(nsd[:, k].mean()), rel=1e-6)


def test_empty_mask_conventions():
    true = np.zeros((10, 10), int)
    true[2:5, 2:5] = 1
    empty_pred = np.zeros_like(true)
    task = SemanticSegmentation(3, DenseSettings(["bg", "x", "y"], spacing=(1.0, 1.0)))
    s = task.image_scores(empty_pred, true)
    # class x: truth but no prediction -> Dice 0, precision undefined, HD95 = diagonal, NSD 0
    assert s["dice"][1] == 0 and np.isnan(s["precision"][1]) and s["recall"][1] == 0
    assert s["hd95"][1] == pytest.approx(np.hypot(10, 10)) and s["nsd"][1] == 0
    # class y: absent from both -> undefined everywhere, never a crash or a silent 0
    assert all(np.isnan(s[k][2]) for k in ("dice", "iou", "precision", "recall", "hd95", "nsd"))


def test_particle_matcher_constructed_cases():
    true = np.array([[10.0, 10.0], [30.0, 30.0], [50.0, 10.0]])
    exact = match_particles(true.copy(), true, 3.0)
    assert (exact["tp"], exact["fp"], exact["fn"]) == (3, 0, 0) and np.allclose(exact["distances"], 0)
    near = match_particles(true + [2.0, 0.0], true, 3.0)
    assert near["tp"] == 3 and np.allclose(near["distances"], 2)
    miss = match_particles(true + [4.0, 0.0], true, 3.0)  # just outside the radius
    assert (miss["tp"], miss["fp"], miss["fn"]) == (0, 3, 3)
    dup = match_particles(np.array([[10.0, 10.0], [11.0, 10.0], [30.0, 30.0]]), true, 3.0)
    assert (dup["tp"], dup["fp"], dup["fn"]) == (2, 1, 1)  # a duplicate detection is one hit and one FP
    # one-to-one and maximal: a greedy nearest match would pair (20,21) with (20,20) and lose (20,23)
    crowd = match_particles(np.array([[20.0, 21.0], [20.0, 24.5]]), np.array([[20.0, 20.0], [20.0, 23.0]]), 2.0)
    assert crowd["tp"] == 2
    assert match_particles(np.zeros((0, 2)), true, 3.0)["fn"] == 3


def test_find_particles_and_picking_metrics():
    prob = np.zeros((40, 40), np.float32)
    yy, xx = np.mgrid[:40, :40]
    centres = np.array([[8.0, 8.0], [25.0, 30.0]])
    for cy, cx in centres:
        prob = np.maximum(prob, np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8))
    prob[30:33, 5:8] = 0.9  # a plateau: one detection at its centroid
    found = find_particles(prob, 0.5, 3)
    assert len(found) == 3 and any(np.allclose(f, [31, 6]) for f in found)
    mask = (prob > 0.5).astype(np.uint8)
    task = ParticlePicking(2, DenseSettings(["background", "particle"], boundary=False, match_radius=2.0))
    m, _ = task.evaluate_part({"pred": [mask], "y": [mask], "prob": [prob], "centres": [centres]})
    assert m["particle_recall"] == 1 and m["particle_precision"] == pytest.approx(2 / 3)
    assert m["particle_f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 0))
    assert m["dice"] == 1 and m["pixel_auroc"] == 1


def test_dense_leave_one_image_out_and_the_verdict(images):
    from bakeoff.config import EvaluationConfig
    from bakeoff.stats.design import jackknife_values
    from tests.stats.helpers import Dense, compare

    preds, trues = images
    task = SemanticSegmentation(K, DenseSettings(list("abcd"), boundary=False))
    ta = task.tables({"pred": preds, "y": trues})["mean_dice"]
    tb = task.tables({"pred": trues, "y": trues})["mean_dice"]  # a perfect contender
    runs = Dense({(0, 0): ta}, {(0, 0): tb}, {0: 4})
    loo = jackknife_values(lambda W: aggregate(*ta, W), 4)
    for i in range(4):  # each leave-one-image-out value recomputed from the label maps without image i
        keep = [j for j in range(4) if j != i]
        sub = {"pred": [preds[j] for j in keep], "y": [trues[j] for j in keep]}
        assert loo[i] == pytest.approx(task.evaluate_part(sub)[0]["mean_dice"], abs=1e-12)
    res = compare(runs, "a", "b", EvaluationConfig(primary="mean_dice"), extras=False)
    assert res["difference"] == pytest.approx(aggregate(*ta)[0] - 1.0)
    assert res["unit"] == "image" and res["df"] == pytest.approx(3)
    same = Dense({(0, 0): ta}, {(0, 0): ta}, {0: 4})
    assert compare(same, "a", "b", EvaluationConfig(primary="mean_dice"), extras=False)["p_value"] == 1.0


def test_hd95_and_nsd_per_3d_image_match_monai():
    """One surface-distance pass per class gives both metrics exactly as MONAI's two functions."""
    rng = np.random.default_rng(1)
    grid = np.stack(np.meshgrid(*[np.arange(16)] * 3, indexing="ij"), -1)
    spacing = (1.5, 1.0, 0.7)
    task = SemanticSegmentation(3, DenseSettings(["bg", "x", "y"], include_background=True, spacing=spacing,
                                                 nsd_tolerance=1.2))
    for _ in range(3):
        true = np.zeros((16, 16, 16), np.int64)
        true[((grid - rng.uniform(4, 12, 3)) ** 2).sum(-1) < 16] = 1
        true[((grid - rng.uniform(4, 12, 3)) ** 2).sum(-1) < 6] = 2
        pred = np.where(rng.random(true.shape) < 0.9, true, rng.integers(0, 3, true.shape))
        s = task.image_scores(pred, true)
        P = torch.from_numpy(np.eye(3)[pred]).permute(3, 0, 1, 2)[None].float()
        T = torch.from_numpy(np.eye(3)[true]).permute(3, 0, 1, 2)[None].float()
        hd = compute_hausdorff_distance(P, T, include_background=True, percentile=95, spacing=list(spacing))[0]
        nsd = compute_surface_dice(P, T, [1.2] * 3, include_background=True, spacing=list(spacing))[0]
        np.testing.assert_allclose(s["hd95"], hd.numpy(), rtol=1e-6)
        np.testing.assert_allclose(s["nsd"], nsd.numpy(), rtol=1e-6)
