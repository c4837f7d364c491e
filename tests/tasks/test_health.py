"""Run health (Task.health): a run whose test predictions collapse to one class is named, with the class."""

from __future__ import annotations

import numpy as np

from bakeoff.tasks import get_task


def test_a_run_predicting_one_class_for_every_sample_is_collapsed():
    task = get_task("binary_classification", 2)
    y = np.array([0] * 70 + [1] * 30)
    rng = np.random.default_rng(0)
    all_positive = {"y": y, "probs": rng.uniform(0.6, 0.9, 100), "class_names": ["no spot", "spot"]}
    assert task.health(all_positive) == "collapsed: predicts class 'spot' for 100% of the test samples (at threshold 0.5)"
    assert "class '1'" in task.health({"y": y, "probs": all_positive["probs"]})  # no names: the label
    healthy = {"y": y, "probs": np.where(y == 1, 0.8, 0.2)}
    assert task.health(healthy) == ""
    assert task.health({"y": np.zeros(50, int), "probs": np.full(50, 0.1)}) == ""  # one true class: nothing to say
    multi = get_task("multiclass_classification", 3)
    probs = np.tile([0.2, 0.7, 0.1], (60, 1))
    assert "class '1' for 100%" in multi.health({"y": np.arange(60) % 3, "probs": probs})
    assert get_task("regression").health({"y": np.ones(5), "probs": np.ones(5)}) == ""  # cannot tell: says nothing


def test_a_validation_score_no_better_than_shuffled_labels_is_at_chance():
    from sklearn.metrics import roc_auc_score

    task = get_task("binary_classification", 2)
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    noise = {"y": y, "probs": rng.uniform(0, 1, 200)}
    note = task.chance_note(noise, "auroc")
    # the reference: sklearn's AUROC under 199 label permutations; the observed score is below their 95 % point
    perm = np.random.default_rng(0)
    null = [roc_auc_score(perm.permutation(y), noise["probs"]) for _ in range(199)]
    assert roc_auc_score(y, noise["probs"]) <= np.quantile(null, 0.95)
    assert note.startswith("at chance on validation: auroc")
    q = float(note.split("95 % point ")[1].split(")")[0])
    assert abs(q - np.quantile(null, 0.95)) < 0.02  # the same null, from other permutations
    learnt = {"y": y, "probs": np.clip(0.3 * y + rng.uniform(0, 0.7, 200), 0, 1)}
    assert roc_auc_score(y, learnt["probs"]) > 0.7 and task.chance_note(learnt, "auroc") == ""
    # a lower-is-better metric: a Brier score no lower than shuffled labels give is at chance too
    assert task.chance_note(noise, "brier").startswith("at chance on validation: brier")
    assert task.chance_note(learnt, "brier") == ""
    assert task.chance_note({"y": np.zeros(50, int), "probs": np.full(50, 0.1)}, "auroc") == ""  # one class


def test_the_permutation_null_is_every_binary_metric_of_each_shuffled_label_row():
    """The chance check's null in one pass (``permuted_binary_metrics``) is what scikit-learn gives for each
    row of shuffled labels (tied scores included), and the note is the one scoring row by row gives."""
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        balanced_accuracy_score,
        f1_score,
        matthews_corrcoef,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    from bakeoff.measure.weighted import BINARY_METRICS, permuted_binary_metrics

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 120)
    probs = np.round(np.clip(0.2 * y + rng.uniform(0, 0.8, 120), 0, 1), 1)  # 11 distinct scores: many ties
    rows = np.stack([rng.permutation(y) for _ in range(25)])
    got = permuted_binary_metrics(probs, rows, 0.5)
    hard = (probs > 0.5).astype(int)
    reference = {
        "auroc": lambda t: roc_auc_score(t, probs), "average_precision": lambda t: average_precision_score(t, probs),
        "accuracy": lambda t: accuracy_score(t, hard), "balanced_accuracy": lambda t: balanced_accuracy_score(t, hard),
        "precision": lambda t: precision_score(t, hard, zero_division=0), "recall": lambda t: recall_score(t, hard),
        "f1": lambda t: f1_score(t, hard), "mcc": lambda t: matthews_corrcoef(t, hard),
        "brier": lambda t: np.mean((probs - t) ** 2)}
    assert set(reference) == set(BINARY_METRICS)
    for name, ref in reference.items():
        np.testing.assert_allclose(got[name], [ref(t) for t in rows], rtol=1e-12, atol=1e-12, err_msg=name)

    task = get_task("binary_classification", 2)
    d = {"y": y, "probs": np.round(rng.uniform(0, 1, 120), 1)}  # noise: each note names its null's 95 % point
    for name in BINARY_METRICS:
        assert task.permuted_metric(name, d["probs"], rows) is not None
        fast = task.chance_note(d, name, seed=7)
        assert fast.startswith(f"at chance on validation: {name}"), fast
        task.permuted_metric = lambda *a, **k: None  # the row-by-row path
        slow = task.chance_note(d, name, seed=7)
        del task.permuted_metric
        assert fast == slow, name


def test_a_regression_run_whose_validation_score_shuffled_targets_match_is_at_chance(tmp_path):
    """Regression can tell too: a network predicting nearly the same number for every image scores no better
    than against shuffled targets; a report of a study scored before regression could tell asks again."""
    from bakeoff.measure.metrics import evaluate_predictions, predictions_arrays
    from bakeoff.utils import save_npz

    task = get_task("regression")
    rng = np.random.default_rng(4)
    y = rng.uniform(0, 8, 150)
    flat = {"ids": np.arange(150), "y": y, "probs": y.mean() + rng.normal(0, 0.2, 150)}
    learnt = {"ids": np.arange(150), "y": y, "probs": y + rng.normal(0, 1.0, 150)}
    note = task.chance_note(flat, "mae")
    assert note.startswith("at chance on validation: mae") and "shuffled targets" in note
    assert task.chance_note(learnt, "mae") == "" and task.chance_note(learnt, "pearson") == ""

    preds = {"val": flat, "test": learnt}
    save_npz(tmp_path / "predictions.npz", **predictions_arrays(preds))
    cache = tmp_path / "scores.npz"
    task.chance_note = lambda *a, **k: None  # as before: regression could not tell, and the cache kept that
    assert "val_chance" not in evaluate_predictions(task, preds, 0.5, cache=cache, chance_metric="mae")
    del task.chance_note
    assert evaluate_predictions(task, preds, 0.5, cache=cache, chance_metric="mae")["val_chance"] == note


def test_a_segmentation_run_that_never_predicts_a_class_of_the_truth_is_collapsed():
    """From the test images' summed pixel confusion matrix (rows: truth): a network that paints everything
    background, or one class it never predicts, is named; background-heavy but complete predictions are not."""
    seg = get_task("semantic_segmentation", 3)
    healthy = np.array([[9000, 40, 10], [30, 500, 0], [5, 0, 80]])
    assert seg.health({"confusion": healthy}) == ""
    background = np.array([[9050, 0, 0], [530, 0, 0], [85, 0, 0]])
    note = seg.health({"confusion": background, "class_names": ["background", "mito", "er"]})
    assert note == "collapsed: predicts class 'background' for every pixel of the test images"
    no_er = np.array([[9040, 10, 0], [30, 500, 0], [80, 5, 0]])
    note = seg.health({"confusion": no_er, "class_names": ["background", "mito", "er"]})
    assert note == "collapsed: never predicts class 'er' on the test images (0.9% of their true pixels)"
    assert seg.health({"confusion": np.array([[100, 0, 0], [0, 0, 0], [0, 0, 0]])}) == ""  # one class in truth
    picker = get_task("particle_picking", 2)
    assert picker.health({"confusion": np.array([[9900, 0], [100, 0]])}) == (
        "collapsed: predicts class 'background' for every pixel of the test images")
