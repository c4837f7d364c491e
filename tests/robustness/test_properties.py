"""Property-based tests (hypothesis): the --set syntax, split generation (no sample in two parts, every
sample placed, stratification within one sample per class, groups never split), and every binary metric
(bounds, label symmetry, agreement with scikit-learn on random inputs)."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics as skm
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bakeoff.config import SplitConfig, apply_overrides
from bakeoff.data.sources import from_arrays
from bakeoff.data.splits import make_splits
from bakeoff.errors import BakeoffError
from bakeoff.tasks import get_task

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
keys = st.lists(st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True), min_size=1, max_size=4)
scalars = st.one_of(st.integers(-10**6, 10**6), st.floats(-1e6, 1e6, allow_nan=False),
                    st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True), st.booleans())


@FAST
@given(path=keys, value=scalars)
def test_set_puts_the_yaml_value_at_the_dotted_path(path, value):
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
    out = apply_overrides({"name": "x"}, [f"{'.'.join(path)}={text}"])
    node = out
    for p in path[:-1]:
        node = node[p]
    assert node[path[-1]] == yaml.safe_load(text)
    assert out["name"] == "x" or path == ["name"]


@FAST
@given(item=st.text(max_size=20).filter(lambda t: "=" not in t))
def test_a_set_without_equals_is_refused_naming_it(item):
    with pytest.raises(BakeoffError, match="--set"):
        apply_overrides({}, [item])


@st.composite
def labelled(draw):
    k = draw(st.integers(2, 4))
    per_class = draw(st.lists(st.integers(8, 40), min_size=k, max_size=k))
    y = np.concatenate([np.full(c, i) for i, c in enumerate(per_class)])
    rng = np.random.default_rng(draw(st.integers(0, 10**6)))
    rng.shuffle(y)
    grouped = draw(st.booleans())
    groups = rng.integers(0, max(4, len(y) // 3), len(y)) if grouped else None
    return y, groups


@FAST
@given(data=labelled(), kind=st.sampled_from(["holdout", "kfold"]), val=st.floats(0.1, 0.3), test=st.floats(0.1, 0.3),
       folds=st.integers(2, 5), seed=st.integers(0, 1000))
@example(data=(np.array([0, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1]),  # 5 folds of 4 groups: found by hypothesis,
               np.array([2, 0, 3, 0, 4, 4, 4, 0, 4, 4, 2, 4, 3, 3, 0, 0])),  # scikit-learn's words without a fix
         kind="kfold", val=0.25, test=0.25, folds=5, seed=0)
def test_splits_place_every_sample_once_keep_groups_together_and_stratify(data, kind, val, test, folds, seed):
    y, groups = data
    arrays = from_arrays(np.zeros((len(y), 2, 2), np.float32), y, groups=groups, spatial_dims=2, num_classes=None)
    cfg = SplitConfig(kind=kind, val_fraction=val, test_fraction=test, folds=folds, seed=seed, grouped=True)
    try:
        splits = make_splits(arrays, cfg)
    except BakeoffError as exc:  # too few samples of a class for a part: refused in words, never a crash
        assert "expected" in str(exc)
        return
    tests_seen = []
    for s in splits:
        parts = [s.train, s.val, s.test]
        allidx = np.concatenate(parts)
        assert len(allidx) == len(set(allidx.tolist())) == len(y)  # every sample in exactly one part
        if groups is not None:
            where = {}
            for name, idx in zip(("train", "val", "test"), parts):
                for g in set(groups[idx].tolist()):
                    assert where.setdefault(g, name) == name, f"group {g} in {where[g]} and {name}"
        elif kind == "holdout":  # the fractions asked for, to a sample (0.3 is 30 %, not the 1/3 of a 3-fold);
            assert abs(len(s.test) - test * len(y)) <= 1, (len(s.test), test, len(y))  # each class's test count
            assert abs(len(s.val) - val * len(y)) <= 2, (len(s.val), val, len(y))  # within one of its share
            share = len(s.test) / len(y)
            for c in np.unique(y):
                n_c = int((y == c).sum())
                assert abs(int((y[s.test] == c).sum()) - share * n_c) <= 1 + 1e-9
        tests_seen.append(s.test)
    if kind == "kfold":  # each sample is tested exactly once over the folds
        joined = np.concatenate(tests_seen)
        assert sorted(joined.tolist()) == list(range(len(y)))


REFERENCE = {
    "accuracy": lambda y, p: skm.accuracy_score(y, p > 0.5),
    "balanced_accuracy": lambda y, p: skm.balanced_accuracy_score(y, p > 0.5),
    "precision": lambda y, p: skm.precision_score(y, p > 0.5, zero_division=0),
    "recall": lambda y, p: skm.recall_score(y, p > 0.5, zero_division=0),
    "f1": lambda y, p: skm.f1_score(y, p > 0.5, zero_division=0),
    "mcc": lambda y, p: skm.matthews_corrcoef(y, p > 0.5),
    "auroc": skm.roc_auc_score,
    "average_precision": skm.average_precision_score,
    "brier": skm.brier_score_loss,
}


@st.composite
def binary(draw):
    n = draw(st.integers(4, 60))
    y = np.asarray(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    y[0], y[1] = 0, 1  # both classes present
    # probabilities on a 1/64 grid: 1 - p is exact, so swapping the classes swaps ties exactly
    p = np.asarray(draw(st.lists(st.integers(0, 64), min_size=n, max_size=n))) / 64
    return y, p


@FAST
@given(yp=binary())
def test_every_binary_metric_is_bounded_and_equals_scikit_learn(yp):
    y, p = yp
    task = get_task("binary_classification")
    assert set(REFERENCE) == set(task.metric_names)  # a new metric needs its reference here
    values = task.metrics(y, p, 0.5)
    for name, ref in REFERENCE.items():
        v = values[name]
        lo = -1 if name == "mcc" else 0
        assert lo - 1e-12 <= v <= 1 + 1e-12, (name, v)
        assert v == pytest.approx(ref(y, p), abs=1e-9), name


@FAST
@given(yp=binary())
def test_auroc_and_brier_are_symmetric_under_swapping_the_classes(yp):
    y, p = yp
    task = get_task("binary_classification")
    a, b = task.metrics(y, p, 0.5), task.metrics(1 - y, 1 - p, 0.5)
    assert a["auroc"] == pytest.approx(b["auroc"], abs=1e-12)
    assert a["brier"] == pytest.approx(b["brier"], abs=1e-12)


# contender names (issue 23): a name is a folder of the study, so every name the study file accepts must be
# one safe path component under --out/runs/, and every other name is refused before anything is written
names = st.one_of(st.text(max_size=80), st.from_regex(r"[A-Za-z0-9_.\-/\\ ]{1,70}", fullmatch=True),
                  st.sampled_from([".", "..", "...", "a/../..", "/abs", "~", "con", "a" * 65, "-rf", ".hidden"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=names)
def test_every_accepted_contender_name_is_a_folder_under_out_runs(name, tmp_path_factory):
    import copy
    import os

    from bakeoff.runs.spec import RunSpec
    from bakeoff.runs.store import StudyStore
    from bakeoff.tasks import validate_study
    from tests.conftest import TINY_STUDY

    raw = copy.deepcopy(TINY_STUDY)
    raw["contenders"] = {name: {"model": "bakeoff:simple_cnn3d"}}
    raw["evaluation"].pop("baseline", None)
    try:
        study = validate_study(raw)
    except BakeoffError as exc:
        assert "contender name" in str(exc) and "expected" in str(exc)
        return
    out = tmp_path_factory.getbasetemp() / "names" / "out"
    (contender,) = study.contenders
    run_dir = StudyStore(out).run_dir(RunSpec(contender, 0, 0, "h"))
    runs = (out / "runs").resolve()
    assert run_dir.resolve().parent.parent == runs and run_dir.resolve().parent.name == contender
    assert len(contender) <= 64 and contender not in (".", "..") and os.sep not in contender


def test_names_at_the_edge_train_and_write_only_under_out(tmp_path, monkeypatch):
    """The accepted names nearest to unsafe ones ('a..b', a trailing '.', the 64-character limit) through the
    CLI: every file lands under --out (runs under --out/runs/NAME/), and every contender is in results.csv."""
    import sys

    import pandas as pd
    import yaml

    from bakeoff.cli import main
    from tests.robustness.test_catalogue import _raw

    edge = ["a..b", "9-._x.", "Z" * 64]
    raw = _raw(contenders={n: {"model": "bakeoff:simple_cnn3d"} for n in edge})
    (tmp_path / "work").mkdir()
    study = tmp_path / "s.yaml"
    study.write_text(yaml.safe_dump(raw, sort_keys=False))
    monkeypatch.chdir(tmp_path / "work")  # a relative path written by mistake would land here
    monkeypatch.setattr(sys, "argv", ["bakeoff", "run", str(study), "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code in (0, None)
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(tmp_path / "out")]
    assert outside == [study], outside
    runs = sorted(p.parent.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("run.json"))
    assert runs == sorted(f"runs/{n}/seed0-fold0" for n in edge)
    assert sorted(pd.read_csv(tmp_path / "out" / "results.csv")["contender"]) == sorted(edge)
