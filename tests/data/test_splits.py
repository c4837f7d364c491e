from __future__ import annotations

import numpy as np
import pytest

from bakeoff.config import SplitConfig
from bakeoff.data.sources import from_arrays
from bakeoff.data.splits import group_overlap, make_splits
from bakeoff.errors import BakeoffError


def _data(n=300, groups=None, pos=0.3, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < pos).astype(int)
    return from_arrays(rng.normal(size=(n, 4, 4)), y, groups=groups)


def test_holdout_is_a_stratified_partition():
    d = _data()
    (s,) = make_splits(d, SplitConfig(kind="holdout", val_fraction=0.2, test_fraction=0.2))
    allidx = np.concatenate([s.train, s.val, s.test])
    assert sorted(allidx.tolist()) == list(range(300))
    assert len(s.test) == pytest.approx(60, abs=3) and len(s.val) == pytest.approx(60, abs=3)
    for part in (s.train, s.val, s.test):
        assert d.y[part].mean() == pytest.approx(d.y.mean(), abs=0.03)


def test_a_fraction_that_is_not_one_over_k_is_held_out_as_asked():
    """30 % is 30 %: scikit-learn's StratifiedShuffleSplit (the reference) gives the same test part, and 1/k
    fractions keep the first fold of a stratified k-fold (a study's splits never change)."""
    from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

    d = _data(n=200)
    (s,) = make_splits(d, SplitConfig(kind="holdout", val_fraction=0.2, test_fraction=0.3, seed=7))
    assert (len(s.train), len(s.val), len(s.test)) == (100, 40, 60)
    _, held = next(StratifiedShuffleSplit(1, test_size=60, random_state=7).split(np.zeros(200), d.y))
    assert sorted(s.test.tolist()) == sorted(held.tolist())
    (q,) = make_splits(d, SplitConfig(kind="holdout", val_fraction=0.25, test_fraction=0.25, seed=7))
    _, held = next(StratifiedKFold(4, shuffle=True, random_state=7).split(np.zeros(200), d.y))
    assert sorted(q.test.tolist()) == sorted(held.tolist())


def test_kfold_tests_cover_every_sample_once():
    d = _data()
    splits = make_splits(d, SplitConfig(kind="kfold", folds=5))
    tests = np.concatenate([s.test for s in splits])
    assert sorted(tests.tolist()) == list(range(300))
    for s in splits:
        assert not set(s.train) & set(s.val) and not set(s.train) & set(s.test)


def test_grouped_splits_never_cut_a_group():
    groups = np.repeat(np.arange(30), 10)
    d = _data(groups=groups)
    for kind in ("holdout", "kfold"):
        for s in make_splits(d, SplitConfig(kind=kind, folds=3)):
            assert group_overlap(d, s) == set()
    (s,) = make_splits(d, SplitConfig(kind="holdout", grouped=False))
    assert group_overlap(d, s)  # without grouping, groups do leak


def test_fingerprints_are_stable_and_sensitive():
    d = _data()
    a = make_splits(d, SplitConfig(seed=0))[0].fingerprints(d.ids)
    b = make_splits(d, SplitConfig(seed=0))[0].fingerprints(d.ids)
    c = make_splits(d, SplitConfig(seed=1))[0].fingerprints(d.ids)
    assert a == b and a["test"] != c["test"]


def test_single_class_part_is_an_error():
    d = _data(n=40, pos=0.05, seed=2)
    d.y[:2] = 1  # two positives cannot fill five test folds
    with pytest.raises(BakeoffError, match="has no samples of class"):
        make_splits(d, SplitConfig(kind="kfold", folds=5))


def test_exact_duplicates_across_parts_are_found():
    from bakeoff.data.splits import exact_duplicates

    d = _data(n=100)
    d.X[7] = d.X[3]
    (s,) = make_splits(d, SplitConfig(kind="holdout", seed=4))
    found = exact_duplicates(d, s)
    parts = {int(i): p for p in ("train", "val", "test") for i in s.indices(p)}
    if parts[3] == parts[7]:
        assert found == []
    else:
        assert len(found) == 1 and {found[0]["id"], found[0]["duplicate_of"]} == {d.ids[3], d.ids[7]}
    d.X[8] = d.X[3]
    d.X[9] = d.X[3]
    assert len(exact_duplicates(d, s)) >= 1  # four copies cannot all share one part of a 60/20/20 split


def test_predefined_folds_from_the_data():
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 60)
    folds = np.repeat([10, 20, 30], 40)
    d = from_arrays(rng.normal(size=(120, 4, 4)), y, folds=folds)
    splits = make_splits(d, SplitConfig(kind="predefined", val_fraction=0.25))
    assert [sorted(s.test.tolist()) for s in splits] == [list(range(0, 40)), list(range(40, 80)),
                                                         list(range(80, 120))]
    for s in splits:
        assert len(s.val) == pytest.approx(20, abs=2) and not set(s.val) & set(s.test)
    with pytest.raises(BakeoffError, match="needs a folds array"):
        make_splits(from_arrays(rng.normal(size=(120, 4, 4)), y), SplitConfig(kind="predefined"))


def test_grouped_data_without_grouped_split_warns(tiny_raw):
    from bakeoff.runs.context import StudyContext
    from bakeoff.tasks import validate_study

    tiny_raw["data"]["split"]["grouped"] = False
    with pytest.warns(UserWarning, match="splitting one group across parts inflates results"):
        splits = StudyContext(validate_study(tiny_raw)).splits
    assert len(splits) == 1
