"""Common checks over the registries, in the manner of timm's tests over ``list_models()`` and
scikit-learn's estimator checks: every registered model builds in each dimensionality it declares and
gives the right output shape with gradients for every parameter; every registered loss is finite and
passes finite gradients on each kind of task it declares; every registered metric equals its reference
(torchmetrics for classification; MONAI and hand counts for dense ones in tests/seg) and under bootstrap
weights equals the metric of the explicitly resampled units; every registered data source round-trips a
tiny set written to disk. A component registered without a case here fails these tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bakeoff.config import LossConfig
from bakeoff.losses import LOSSES, build_loss
from bakeoff.models import create_model
from bakeoff.models.registry import MODEL_INFO

MODEL_CASES = [(name, d) for name, info in MODEL_INFO.items() for d in info.dims]
LOSS_CASES = [(name, kind) for name, spec in LOSSES.items() for kind in spec.kinds]


@pytest.mark.parametrize(("name", "dims"), MODEL_CASES, ids=[f"{n}-{d}d" for n, d in MODEL_CASES])
def test_every_registered_model_builds_and_trains_in_its_dimensionalities(name, dims):
    info = MODEL_INFO[name]
    shape = (9, 11, 11) if name == "simple_cnn3d" else (16,) * dims
    torch.manual_seed(0)
    net = create_model(f"bakeoff:{name}", in_channels=2, num_outputs=3, spatial_dims=dims, input_shape=shape,
                       params=dict(info.small or {}))
    out = net(torch.randn(2, 2, *shape))
    assert tuple(out.shape) == ((2, 3, *shape) if info.dense else (2, 3))
    out.float().square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.isfinite().all())]
    assert not missing, missing[:5]


def _batch(kind: str):
    g = torch.Generator().manual_seed(0)
    if kind == "binary":
        return torch.randn(6, 1, generator=g), torch.tensor([0.0, 1.0] * 3), "bce", 2
    if kind == "multiclass":
        return torch.randn(6, 3, generator=g), torch.tensor([0, 1, 2] * 2), "ce", 3
    return torch.randn(2, 3, 8, 8, generator=g), torch.randint(0, 3, (2, 8, 8), generator=g), "ce", 3


@pytest.mark.parametrize(("name", "kind"), LOSS_CASES, ids=[f"{n}-{k}" for n, k in LOSS_CASES])
def test_every_registered_loss_is_finite_with_gradients_on_its_tasks(name, kind):
    logits, target, default, k = _batch(kind)
    for weighting in ("none", "balanced"):
        y = None if kind == "dense" else target.long().numpy()
        task = get_task({"binary": "binary_classification", "multiclass": "multiclass_classification",
                         "dense": "semantic_segmentation"}[kind], k)
        loss_fn = build_loss(LossConfig(name=name, class_weights=weighting), task, y,
                             counts=np.array([50.0, 30.0, 20.0][:k]) if kind == "dense" else None)
        x = logits.clone().requires_grad_(True)
        value = loss_fn(x, target)
        assert value.ndim == 0 and torch.isfinite(value), (name, weighting, value)
        value.backward()
        assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


# -- metrics ---------------------------------------------------------------------------------------------
from bakeoff.tasks import get_task, known_tasks, task_class  # noqa: E402
from bakeoff.tasks.metric import REGISTRY  # noqa: E402
from tests.tasks.test_metric_protocol import (  # noqa: E402
    _binary,
    _multi,
    _tol,
    _torchmetrics_binary,
    _torchmetrics_multiclass,
)

known_tasks()  # and each task module's own
SAMPLE_METRICS = sorted((t, n) for t, n in REGISTRY if t.endswith("_classification") and n != "loss")
OTHER_METRICS = sorted((t, n) for (t, n), m in REGISTRY.items() if not t.endswith("_classification")
                       and m.resamplable)  # dense tasks, regression, and any task a module adds


@pytest.mark.parametrize(("task", "name"), SAMPLE_METRICS, ids=[f"{t}-{n}" for t, n in SAMPLE_METRICS])
def test_every_classification_metric_equals_torchmetrics(task, name):
    if task == "binary_classification":
        y, p = _binary(seed=7)
        ref = _torchmetrics_binary(y, p, 0.5)
        t = get_task(task)
    else:
        y, p = _multi(K=3, seed=8)
        ref = _torchmetrics_multiclass(y, p, 3)
        t = get_task(task, 3)
    assert name in ref, f"{task} metric {name} has no reference in tests/tasks/test_metric_protocol.py"
    got = t.metric(name).value({"y": y, "probs": p}, t, 0.5)
    assert got == pytest.approx(float(ref[name]), abs=_tol(ref[name]))


@pytest.mark.parametrize(("task", "name"), SAMPLE_METRICS + OTHER_METRICS,
                         ids=[f"{t}-{n}" for t, n in SAMPLE_METRICS + OTHER_METRICS])
def test_every_metric_under_bootstrap_weights_equals_the_explicit_resample(task, name):
    from bakeoff.stats.bootstrap import bootstrap_weights, strata_of

    rng = np.random.default_rng(5)
    if task.endswith("_classification"):
        t = get_task(task, None if task == "binary_classification" else 3)
        y, p = _binary(60, seed=9) if task == "binary_classification" else _multi(60, 3, seed=9)
        part = {"y": y, "probs": p}
        resample = lambda idx: {"y": y[idx], "probs": p[idx]}  # noqa: E731
    elif not task_class(task).dense:  # one number per sample (regression): truth and prediction
        t = get_task(task)
        y = rng.integers(0, 6, 60).astype(float)
        p = y + rng.normal(size=60)
        part = {"y": y, "probs": p}
        resample = lambda idx: {"y": y[idx], "probs": p[idx]}  # noqa: E731
    else:  # a ratio-of-sums dense metric: per-image (num, den)
        t = get_task(task, 2 if task == "particle_picking" else 3)
        den = rng.uniform(1, 50, (12, 2))
        num = den * rng.uniform(0, 1, (12, 2))
        part = {"y": [None] * 12, "tables": {name: (num, den)}}
        resample = lambda idx: {"y": [None] * len(idx), "tables": {name: (num[idx], den[idx])}}  # noqa: E731
    m = t.metric(name)
    n = len(part["y"])
    W = bootstrap_weights(strata_of(part["y"] if t.stratify_by_label else None, n), n, 4, rng)
    got = m.weighted(m.table(part, t, 0.5), W)
    for b in range(4):
        idx = np.repeat(np.arange(n), W[b].astype(int))
        assert got[b] == pytest.approx(m.value(resample(idx), t, 0.5), abs=1e-12, nan_ok=True)


# -- data sources ----------------------------------------------------------------------------------------
def _write_npz(root):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(10, 6, 6, 6)).astype(np.float32), np.arange(10) % 2
    np.savez(root / "d.npz", X=X, y=y)
    return f"npz:{root / 'd.npz'}", X[:, None], y


def _write_images(kind):
    def write(root):
        from PIL import Image

        rng = np.random.default_rng(1)
        X = rng.integers(0, 256, (6, 8, 8)).astype(np.uint8)
        y = np.array([0, 1, 0, 1, 1, 0])
        rows = ["path,label"]
        for i, (x, c) in enumerate(zip(X, y)):
            folder = root / ("cat", "dog")[c] if kind == "folder" else root
            folder.mkdir(exist_ok=True)
            Image.fromarray(x).save(folder / f"im{i}.png")
            rows.append(f"im{i}.png,{('cat', 'dog')[c]}")
        (root / "m.csv").write_text("\n".join(rows) + "\n")
        src = f"folder:{root}" if kind == "folder" else f"csv:{root / 'm.csv'}"
        return src, X[:, None] / 255.0, y
    return write


def _write_npz_dir(root):
    rng = np.random.default_rng(2)
    images, masks = [], []
    for part in ("train", "val", "test"):
        (root / part).mkdir()
        m = rng.integers(0, 3, (16, 16)).astype(np.uint8)
        x = rng.normal(size=(16, 16)).astype(np.float32)
        np.savez(root / part / f"{part}0.npz", image=x, mask=m)
        images.append(x)
        masks.append(m)
    return f"npz_dir:{root}", images, masks


def _write_tiff_dir(root):
    import tifffile

    rng = np.random.default_rng(3)
    images, masks = [], []
    for part in ("train", "val", "test"):
        for sub in ("images", "masks"):
            (root / part / sub).mkdir(parents=True)
        m = rng.integers(0, 2, (16, 16)).astype(np.uint8)
        x = rng.normal(size=(16, 16)).astype(np.float32)
        tifffile.imwrite(root / part / "images" / f"{part}0.tif", x)
        tifffile.imwrite(root / part / "masks" / f"{part}0.tif", m)
        images.append(x)
        masks.append(m)
    return f"tiff_dir:{root}", images, masks


def _write_csv_pairs(root):
    from PIL import Image

    rng = np.random.default_rng(4)
    images, masks, rows = [], [], ["image,mask,split"]
    for part in ("train", "val", "test"):
        img = rng.integers(0, 256, (10, 12), dtype=np.uint8)
        mask = (rng.random((10, 12)) > 0.6).astype(np.uint8)
        Image.fromarray(img).save(root / f"{part}0.png")
        Image.fromarray(mask).save(root / f"{part}0_mask.png")
        rows.append(f"{part}0.png,{part}0_mask.png,{part}")
        images.append(img)
        masks.append(mask)
    (root / "pairs.csv").write_text("\n".join(rows) + "\n")
    return f"csv:{root / 'pairs.csv'}", images, masks


WRITERS = {("npz", False): _write_npz, ("csv", True): _write_csv_pairs, ("csv", False): _write_images("csv"),
           ("folder", False): _write_images("folder"), ("npz_dir", True): _write_npz_dir,
           ("tiff_dir", True): _write_tiff_dir}


def _sources():
    from bakeoff.data.registry import load_sources

    return sorted(load_sources())


@pytest.mark.parametrize(("name", "dense"), _sources(), ids=[f"{n}{'-dense' if d else ''}" for n, d in _sources()])
def test_every_data_source_round_trips_a_tiny_set(tmp_path, name, dense):
    from bakeoff.data.segdata import load_dense_source
    from bakeoff.data.sources import load_source

    if name.startswith("builtin:"):  # generators: the same parameters give the same data
        from bakeoff.data.registry import SOURCES

        instances = SOURCES[name, dense].instances  # (masks of object ids: read as an instance study does)
        load = (lambda: load_dense_source(name, None, spatial_dims=None, num_classes=2 if instances else None,
                                          spacing=None, normalize="none", instances=instances)) if dense \
            else (lambda: load_source(name, num_classes=None))
        assert load().fingerprint() == load().fingerprint()
        return
    assert (name, dense) in WRITERS, f"data source {name} has no round-trip case in tests/test_common_checks.py"
    if dense:
        src, images, masks = WRITERS[name, dense](tmp_path)
        data = load_dense_source(src, None, spatial_dims=2, num_classes=None, spacing=None, normalize="none")
        assert len(data.ids) == 3
        for k, part in enumerate(("train", "val", "test")):  # each file written as {part}0
            (i,) = [j for j, name in enumerate(data.ids) if f"{part}0" in str(name)]
            np.testing.assert_array_equal(data.mask(i), masks[k])
            np.testing.assert_allclose(data.image(i)[0], images[k], rtol=1e-6)
    else:
        src, X, y = WRITERS[name, dense](tmp_path)
        data = load_source(src, spatial_dims=None if name == "npz" else 2)
        order = np.argsort([int("".join(filter(str.isdigit, str(i))) or 0) for i in data.ids])
        np.testing.assert_allclose(data.X[order], X, atol=1e-6)
        np.testing.assert_array_equal(data.y[order], y)


# -- tasks -----------------------------------------------------------------------------------------------
def test_every_task_module_registers_its_task_and_names_a_primary_it_reports():
    from bakeoff.tasks import known_tasks

    tasks = known_tasks()
    assert {"binary_classification", "semantic_segmentation", "particle_picking"} <= set(tasks)
    for name, cls in tasks.items():
        assert cls.default_primary in cls.create(None if cls.fixed_classes else 3).metric_names, name
