"""MLflow tracking with its default store (SQLite in the study directory): one experiment per study, one
MLflow run per bakeoff run with its parameters, per-epoch metrics, final metrics and checkpoint."""

from __future__ import annotations

import pandas as pd
import pytest

from bakeoff.api import Study


def test_mlflow_gets_one_run_per_bakeoff_run(tmp_path, tiny_raw):
    from mlflow.tracking import MlflowClient

    tiny_raw["protocol"].update(seeds=[0], epochs=3)
    tiny_raw["evaluation"].update(speed=False, n_boot=200)
    tiny_raw["tracking"] = {"mlflow": {}}
    out = tmp_path / "o"
    report = Study.from_dict(tiny_raw).run(out)
    assert (out / "mlflow.db").is_file()
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("tiny")
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["cnn/seed0-fold0", "se/seed0-fold0"]
    results = report.results.set_index("contender")
    for r in runs:
        contender = r.data.params["contender"]
        assert r.info.status == "FINISHED" and r.data.params["seed"] == "0"
        assert r.data.params["protocol.optimizer.lr"] == "0.003"
        history = client.get_metric_history(r.info.run_id, "val/auroc")
        assert [m.step for m in history] == [0, 1, 2]  # one point per epoch
        assert r.data.metrics["test_auroc"] == pytest.approx(results.loc[contender, "test_auroc"], abs=1e-12)
        arts = client.list_artifacts(r.info.run_id, "checkpoints")
        assert [a.path for a in arts] == ["checkpoints/best.ckpt"]
        assert (out / "mlflow-artifacts").is_dir()  # artifacts live in the study directory, not the cwd
    df = pd.read_csv(out / "results.csv")
    assert "tracking_error" not in df.columns or df["tracking_error"].isna().all()
