from __future__ import annotations

import numpy as np
import pytest
import torch

import bakeoff
from bakeoff.data.spots3d import make_spots3d
from bakeoff.errors import BakeoffError


@pytest.fixture(scope="module")
def spots():
    d = make_spots3d(n=240, positive_fraction=0.3, snr=5.0, seed=2)
    return d["X"][:160], d["y"][:160], d["X"][160:], d["y"][160:]


def test_create_train_predict_save_load(tmp_path, spots):
    Xt, yt, Xv, yv = spots
    t = bakeoff.create_trainer("se_resnet", spatial_dims=3, base_channels=4, num_blocks=1, use_se=True,
                               learning_rate=3e-3, batch_size=16, epochs=2)
    assert t.protocol.optimizer.lr == 3e-3 and t.protocol.batch_size == 16 and t.protocol.epochs == 2
    model = t.build_model()
    assert isinstance(model, torch.nn.Module) and t.model is model
    history = t.train(Xt, yt, Xv, yv)
    assert history["epoch"] == [1, 2]
    assert len(history["train_loss"]) == 2 and len(history["val_auroc"]) == 2
    p = t.predict(Xv)
    assert p.shape == (80,) and np.all((p >= 0) & (p <= 1))
    t.save(tmp_path / "model.pt")
    again = bakeoff.load_trainer(tmp_path / "model.pt")
    np.testing.assert_array_equal(again.predict(Xv), p)
    # the file needs no unpickling of code
    assert torch.load(tmp_path / "model.pt", weights_only=True)["model"] == "bakeoff:se_resnet"


def test_same_seed_same_model(spots):
    Xt, yt, Xv, yv = spots
    preds = []
    for _ in range(2):
        t = bakeoff.create_trainer("simple_cnn3d", learning_rate=1e-3, batch_size=32, epochs=2,
                                   augment=["flip", "rot90"], seed=5)
        t.train(Xt, yt, Xv, yv)
        preds.append(t.predict(Xv))
    np.testing.assert_array_equal(preds[0], preds[1])


def test_training_leaves_the_callers_determinism_settings_as_they_were(spots):
    """The trainer API runs in the user's process (a notebook): its deterministic kernels are on while it
    trains and the caller's own settings are back afterwards, whatever they were."""
    Xt, yt, Xv, yv = spots

    def switches():
        return (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
                torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
                torch.utils.deterministic.fill_uninitialized_memory)

    original = switches()
    try:
        for mine in [(False, False, False, True, True), (True, False, True, False, True)]:
            torch.use_deterministic_algorithms(mine[0], warn_only=mine[1])
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = mine[2], mine[3]
            torch.utils.deterministic.fill_uninitialized_memory = mine[4]
            t = bakeoff.create_trainer("simple_cnn3d", epochs=1, seed=1)
            t.train(Xt[:64], yt[:64], Xv[:32], yv[:32])
            assert switches() == mine
    finally:
        torch.use_deterministic_algorithms(original[0], warn_only=original[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = original[2], original[3]
        torch.utils.deterministic.fill_uninitialized_memory = original[4]


def test_bad_input_is_one_clear_error(spots):
    Xt, yt, Xv, yv = spots
    t = bakeoff.create_trainer("simple_cnn3d", epochs=1)
    with pytest.raises(BakeoffError, match="X has 160 samples but y has 159"):
        t.train(Xt, yt[:-1], Xv, yv)
    with pytest.raises(BakeoffError, match="only class"):
        t.train(Xt, np.zeros_like(yt), Xv, yv)
    with pytest.raises(BakeoffError, match=r"unknown model 'se_resnet3d' \(did you mean"):
        bakeoff.create_trainer("se_resnet3d")
    with pytest.raises(BakeoffError, match="create_trainer: epochs"):
        bakeoff.create_trainer("simple_cnn3d", epochs=0)


def test_load_refuses_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"format": "bakeoff.trainer/1", "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(BakeoffError, match="not a safe bakeoff trainer file"):
        bakeoff.load_trainer(tmp_path / "evil.pt")


def test_a_2d_trainer_builds_from_the_data_or_an_input_shape_it_is_given():
    """The README's 2D use: train() builds the network from the images' shape; build_model() before
    training takes input_shape, and without it says so instead of assuming a 3D patch."""
    from sklearn.datasets import load_digits

    d = load_digits()
    keep = np.isin(d.target, [3, 8])
    X, y = (d.images[keep] / 16).astype(np.float32), (d.target[keep] == 8).astype(np.int64)
    t = bakeoff.create_trainer("se_resnet", spatial_dims=2, base_channels=4, num_blocks=1, epochs=1, batch_size=32)
    with pytest.raises(BakeoffError, match=r"build_model\(input_shape=\(H, W\)\)"):
        t.build_model()
    assert isinstance(t.build_model(input_shape=(8, 8)), torch.nn.Module)
    history = t.train(X[:200], y[:200], X[200:280], y[200:280])
    assert history["epoch"] == [1] and t._shape == (1, (8, 8))
    assert t.predict(X[280:]).shape == (len(X) - 280,)
    fresh = bakeoff.create_trainer("se_resnet", spatial_dims=2, base_channels=4, num_blocks=1, epochs=1)
    fresh.train(X[:200], y[:200], X[200:280], y[200:280])  # no build_model(): built from the data
    assert fresh._shape == (1, (8, 8))
