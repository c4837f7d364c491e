"""MLflow tracking (``tracking: {mlflow: {uri: ...}}``): one MLflow experiment per study, one MLflow run per
bakeoff run, logged when the run ends (done or failed) from what it saved: its parameters (contender,
model and its parameters, the resolved protocol, seed, fold), the per-epoch metrics of its CSV log (step =
epoch), its final validation and test metrics, and the selected checkpoint as an artifact. Without a
``uri`` the store is SQLite inside the study directory (artifacts beside it). A tracking failure is
recorded in run.json, never fails the run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bakeoff.runs.store import BEST_FILE, CHECKPOINTS_DIR, CSV_LOG, METRICS_FILE
from bakeoff.utils import read_json

MLFLOW_DB = "mlflow.db"
MLFLOW_ARTIFACTS = "mlflow-artifacts"


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, f"{key}."))
        else:
            out[key] = str(v)[:6000]
    return out


def _key(name: str) -> str:
    """An MLflow-legal metric name (letters, digits, _ - . / space and colon)."""
    return name.replace("@", "_at_")


def tracking_uri(cfg: Any, root: Path) -> str:
    return cfg.uri or f"sqlite:///{(Path(root) / MLFLOW_DB).resolve()}"


def log_run(cfg: Any, root: Path, study_name: str, info: dict[str, Any], run_dir: Path) -> str:
    """Log one finished bakeoff run; returns the MLflow run id."""
    import pandas as pd
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri(cfg, root))
    name = cfg.experiment or study_name
    exp = client.get_experiment_by_name(name)
    exp_id = exp.experiment_id if exp is not None else client.create_experiment(
        name, artifact_location=(Path(root) / MLFLOW_ARTIFACTS).resolve().as_uri())
    key = f"{info['contender']}/{info['run_id']}"
    run = client.create_run(exp_id, run_name=key, tags={"bakeoff.contender": info["contender"],
                                                        "bakeoff.hash": str(info.get("hash"))})
    rid = run.info.run_id
    params = _flatten({"contender": info["contender"], "model": info.get("model"), "seed": info["seed"],
                       "fold": info["fold"], "params": info.get("params") or {},
                       "protocol": info.get("protocol") or {}})
    now = int(time.time() * 1000)
    metrics = []
    log = run_dir / CSV_LOG
    if log.is_file():
        df = pd.read_csv(log)
        for _, row in df.iterrows():
            step = int(row["epoch"]) if "epoch" in row and pd.notna(row["epoch"]) else 0
            for col, v in row.items():
                if col not in ("epoch", "step") and pd.notna(v):
                    metrics.append(Metric(_key(str(col)), float(v), now, step))
    final = read_json(run_dir / METRICS_FILE) if (run_dir / METRICS_FILE).is_file() else {}
    for part in ("val", "test"):
        for k, v in (final.get(part) or {}).items():
            if isinstance(v, int | float):
                metrics.append(Metric(_key(f"{part}_{k}"), float(v), now, 0))
    for k in ("train_time_s", "wall_time_s", "n_parameters", "best_epoch"):
        if isinstance(info.get(k), int | float):
            metrics.append(Metric(k, float(info[k]), now, 0))
    plist = [Param(k, v) for k, v in params.items()]
    for i in range(0, max(len(metrics), len(plist), 1), 900):  # MLflow's batch limits
        client.log_batch(rid, metrics=metrics[i:i + 900], params=plist[i:i + 100] if i == 0 else [],
                         tags=[RunTag("bakeoff.status", str(info.get("status")))] if i == 0 else [])
    for i in range(100, len(plist), 100):
        client.log_batch(rid, params=plist[i:i + 100])
    best = run_dir / CHECKPOINTS_DIR / BEST_FILE
    if best.is_file():
        client.log_artifact(rid, str(best), artifact_path="checkpoints")
    client.set_terminated(rid, status="FINISHED" if info.get("status") == "done" else "FAILED")
    return rid
