"""The Lightning Trainer factory: loggers, checkpoint selection, early stopping, progress."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from bakeoff.config import ProtocolConfig

CHECKPOINT_NAME = "best"

# Lightning announces devices and tips at INFO level on every fit; bakeoff reports progress itself.
for _name in ("lightning.pytorch", "lightning.fabric", "lightning"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def build_trainer(protocol: ProtocolConfig, run_dir: Path | None, *, logs: bool = True) -> tuple[L.Trainer, ModelCheckpoint]:
    select = protocol.select
    ckpt = ModelCheckpoint(
        dirpath=None if run_dir is None else run_dir / "checkpoints",
        filename=CHECKPOINT_NAME, monitor=select.monitor, mode=select.mode, save_top_k=1,
        auto_insert_metric_name=False, enable_version_counter=False,
        save_weights_only=True,  # the selected weights are all a run needs; optimizer state tripled the size
    )
    callbacks: list[Any] = [ckpt]
    if protocol.early_stopping is not None:
        es = protocol.early_stopping
        callbacks.append(EarlyStopping(monitor=es.monitor or select.monitor, mode=select.mode,
                                       patience=es.patience, min_delta=es.min_delta))
    loggers: list[Any] = []
    if logs and run_dir is not None:
        loggers = [CSVLogger(run_dir / "logs", name="csv", version=""),
                   TensorBoardLogger(run_dir / "logs", name="tensorboard", version="", default_hp_metric=False)]
    trainer = L.Trainer(
        max_epochs=protocol.epochs,
        accelerator=protocol.accelerator,
        devices=protocol.devices,
        precision=protocol.precision,
        deterministic=protocol.deterministic,
        logger=loggers or False,
        callbacks=callbacks,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,  # nothing is logged per step (see module.py); this only silences a warning
        gradient_clip_val=protocol.gradient_clip,
        default_root_dir=str(run_dir) if run_dir is not None else None,
    )
    return trainer, ckpt
