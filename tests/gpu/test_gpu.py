"""On a CUDA GPU: every example study end to end at tiny size with its defaults and with mixed precision,
the trainer API, and the determinism policy. Marked ``gpu``; skipped without CUDA (CI has none).

    pytest -m gpu tests/gpu            # on a GPU machine
    BAKEOFF_GPU_TESTS_ON_CPU=1 pytest -m gpu tests/gpu -k "spots3d and default"   # the test code itself, on CPU
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import computed_columns
from tests.test_cli import bakeoff

ROOT = Path(__file__).resolve().parents[2]
ON_CPU = os.environ.get("BAKEOFF_GPU_TESTS_ON_CPU") == "1"
CUDA = torch.cuda.is_available()
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not (CUDA or ON_CPU), reason="needs a CUDA GPU (BAKEOFF_GPU_TESTS_ON_CPU=1: on CPU)")]

# Each example at tiny size: one seed, one epoch, few steps; what else keeps it small.
TINY = ["protocol.epochs=1", "protocol.seeds=[0]", "evaluation.speed_repeats=2", "evaluation.n_boot=200"]
EXAMPLES = {
    "spots3d": ["data.params.n=400"],
    "organelles2d": ["protocol.iterations_per_epoch=2"],
    "organelles2d_archs": ["protocol.iterations_per_epoch=2"],
    "cryoem_picking": ["protocol.iterations_per_epoch=2"],
    "digits_timm": ["data.image_size=32"],
}
PRECISIONS = {"default": [], "16-mixed": ["protocol.precision=16-mixed"], "bf16-mixed": ["protocol.precision=bf16-mixed"]}


def _sets(items: list[str]) -> list[str]:
    return [a for item in items for a in ("--set", item)]


@pytest.mark.parametrize("precision", list(PRECISIONS))
@pytest.mark.parametrize("example", list(EXAMPLES))
def test_example_study_completes_with_its_defaults(tmp_path, example, precision):
    if precision == "16-mixed" and not CUDA:
        pytest.skip("fp16 AMP needs a GPU (bakeoff refuses it on CPU)")
    extra = list(EXAMPLES[example])
    if example == "digits_timm":
        from tests.images.test_csv_source import make_digits

        extra.append(f"data.source=csv:{make_digits(tmp_path / 'digits')}")
    out = tmp_path / "out"
    proc = bakeoff("run", ROOT / "examples" / f"{example}.yaml", "--out", out,
                   *_sets(TINY + extra + PRECISIONS[precision]))
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    res = pd.read_csv(out / "results.csv")
    assert (res["status"] == "done").all(), res[["contender", "status"]]
    for info_path in out.glob("runs/*/*/run.json"):
        info = json.loads(info_path.read_text())
        assert info["device"].startswith("cuda" if CUDA else "cpu"), info["device"]
        det = info["training"]["determinism"]
        assert det["policy"] == "auto" and det["mode"] in ("strict", "warn"), det
        if CUDA:
            assert info["peak_memory_kind"] == "cuda_max_allocated"
    assert (out / "comparison.json").is_file()


def test_trainer_api_on_the_gpu(tmp_path):
    from bakeoff import create_trainer, load_trainer
    from bakeoff.data.spots3d import make_spots3d

    d = make_spots3d(n=200, positive_fraction=0.4, snr=5.0, seed=0)
    X, y = d["X"], d["y"]
    trainer = create_trainer("simple_cnn3d", spatial_dims=3, epochs=2, batch_size=16, learning_rate=1e-3,
                             precision="bf16-mixed")
    history = trainer.train(X[:120], y[:120], X[120:160], y[120:160])
    assert len(history["epoch"]) == 2
    probs = trainer.predict(X[160:])
    assert probs.shape == (40,) and np.isfinite(probs).all()
    trainer.save(tmp_path / "t.pt")
    again = load_trainer(tmp_path / "t.pt").predict(X[160:])
    np.testing.assert_allclose(again, probs, atol=1e-2)


def test_reruns_with_the_default_policy_are_identical(tmp_path, tiny_raw):
    """Bit-identical on the GPU where every op has a deterministic kernel (the Simple CNN 2D-free path:
    conv3d, max_pool3d forward); recorded either way."""
    from bakeoff.api import Study

    tiny_raw["protocol"].update(seeds=[0], epochs=2)
    tiny_raw["contenders"] = {"cnn": tiny_raw["contenders"]["cnn"]}
    tiny_raw["evaluation"].update(speed=False, baseline="cnn")
    probs, modes = [], []
    for name in ("a", "b"):
        Study.from_dict(tiny_raw).run(tmp_path / name)
        (pred,) = (tmp_path / name).glob("runs/*/*/predictions.npz")
        probs.append(np.load(pred)["test_probs"])
        modes.append(json.loads((pred.parent / "run.json").read_text())["training"]["determinism"])
    assert modes[0] == modes[1]
    if modes[0]["mode"] == "strict":
        assert np.array_equal(probs[0], probs[1])
    else:  # ops without deterministic kernels: close, not necessarily identical
        np.testing.assert_allclose(probs[0], probs[1], atol=1e-3)


def test_a_killed_run_resumes_to_the_same_predictions_on_the_gpu(tmp_path, tiny_raw):
    """Issue 13 on CUDA: a run killed mid-epoch (SIGKILL) resumes from its epoch checkpoint (weights,
    optimizer, scheduler, RNG states incl. CUDA's) and ends with the uninterrupted run's predictions:
    bit for bit where every op has a deterministic kernel (recorded mode 'strict')."""
    import signal

    from tests.conftest import write_study
    from tests.test_resume import _run

    tiny_raw["protocol"].update(seeds=[0], epochs=3, schedule={"name": "cosine"})
    tiny_raw["contenders"] = {"cnn": tiny_raw["contenders"]["cnn"]}
    tiny_raw["evaluation"].update(speed=False, baseline="cnn", n_boot=200)
    tiny_raw["execution"] = {"checkpoint_every_s": 0}
    study = write_study(tmp_path / "s.yaml", tiny_raw)
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert _run(study, ref).returncode == 0
    killed = _run(study, out, "step:6")  # 4 steps per epoch: mid-way through the second epoch
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    proc = _run(study, out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = out / "runs" / "cnn" / "seed0-fold0"
    info = json.loads((run / "run.json").read_text())
    assert info["training"]["resumed_after_epochs"] == 1
    assert info["device"].startswith("cuda" if CUDA else "cpu")
    a = np.load(run / "predictions.npz")["test_probs"]
    b = np.load(ref / "runs" / "cnn" / "seed0-fold0" / "predictions.npz")["test_probs"]
    print("resume on", info["device"], "determinism", info["training"]["determinism"]["mode"],
          "max |diff|", float(np.abs(a - b).max()))
    if info["training"]["determinism"]["mode"] == "strict":
        assert np.array_equal(a, b)
    else:
        np.testing.assert_allclose(a, b, atol=1e-3)


@pytest.mark.skipif(not CUDA, reason="fractional GPUs need a GPU")
def test_fractional_gpus_pack_runs_onto_one_gpu_with_the_local_results(tmp_path, tiny_raw):
    """Issue 13: backend ray with gpus_per_run 0.25 runs four runs at once on the one GPU (a local Ray),
    each on CUDA in its own worker, with the one-after-another executor's results."""
    pytest.importorskip("ray")
    import pandas as pd

    from bakeoff.api import Study

    tiny_raw["protocol"].update(seeds=[0, 1], epochs=2)
    tiny_raw["evaluation"].update(speed=False, n_boot=200)
    local = Study.from_dict(tiny_raw).run(tmp_path / "local")
    tiny_raw["execution"] = {"backend": "ray", "gpus_per_run": 0.25, "cpus_per_run": 1}
    shared = Study.from_dict(tiny_raw).run(tmp_path / "ray")
    infos = [json.loads(p.read_text()) for p in (tmp_path / "ray" / "runs").glob("*/*/run.json")]
    assert len(infos) == 4 and all(i["device"].startswith("cuda") for i in infos), [i["device"] for i in infos]
    assert len({i["pid"] for i in infos}) >= 2 and os.getpid() not in {i["pid"] for i in infos}
    keep = list(computed_columns(local.results).columns)
    sort = ["contender", "seed", "fold"]
    mine = shared.results[keep].sort_values(sort).reset_index(drop=True)
    ref = local.results[keep].sort_values(sort).reset_index(drop=True)
    print("fractional GPUs:", mine[["contender", "seed", "test_auroc"]].to_dict("records"))
    if all(i["training"]["determinism"]["mode"] == "strict" for i in infos):
        pd.testing.assert_frame_equal(mine, ref)
    else:
        pd.testing.assert_frame_equal(mine, ref, atol=1e-3)


def test_image_files_streamed_through_pinned_memory_equal_the_in_memory_path(tmp_path):
    """PNGs decoded into the cache: on the GPU the in-memory path keeps the uint8 pixels on the device and
    normalises there; the streamed path reads batches into pinned memory and copies them without blocking.
    The same inputs reach the network either way: identical predictions where the kernels are deterministic."""
    from bakeoff.api import Study
    from tests.images.pngs import png_study, write_pngs

    manifest = write_pngs(tmp_path / "d", 96, size=16, signal=True)
    probs, training = [], []
    for in_memory in (True, False):
        raw = png_study(manifest, normalize="imagenet", in_memory=in_memory)
        raw["contenders"].pop("b")
        out = tmp_path / f"o{int(in_memory)}"
        Study.from_dict(raw).run(out)
        (pred,) = out.glob("runs/*/*/predictions.npz")
        probs.append(np.load(pred)["test_probs"])
        training.append(json.loads((pred.parent / "run.json").read_text())["training"])
    assert training[0]["data_streamed"] is False and training[1]["data_streamed"] is True
    if CUDA:
        assert training[0]["data_on_device"] and training[1]["pinned_memory"]
    if training[0]["determinism"]["mode"] == "strict":
        assert np.array_equal(probs[0], probs[1])
    else:
        np.testing.assert_allclose(probs[0], probs[1], atol=1e-3)
