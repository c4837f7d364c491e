"""The names of the files a study directory holds: the one definition that the engines below ``runs``
(training writes logs and checkpoints, measurement writes scores) and ``runs.store`` share, so that
neither needs to import the other."""

STUDY_FILE = "study.yaml"
DATA_CHECKS_FILE = "data_checks.json"
RUN_FILE = "run.json"
PREDICTIONS_FILE = "predictions.npz"
METRICS_FILE = "metrics.json"
PROGRESS_FILE = "progress.json"  # a running run's last finished epoch, for bakeoff status from anywhere
FEATURES_FILE = "features.npz"  # dense tasks: feature maps of contenders.NAME.feature_layer
GRADCAM_FILE = "gradcam.npz"  # 2D classification: Grad-CAM of the first validation images
STALE_DIR = "stale"  # DIR/stale/<old hash>/<contender>/<run>: finished runs of earlier data or settings
CHECKPOINTS_DIR = "checkpoints"  # best.ckpt: the selected weights
LOGS_DIR = "logs"  # logs/csv/metrics.csv and logs/tensorboard/
CSV_LOG = f"{LOGS_DIR}/csv/metrics.csv"
BEST_FILE = "best.ckpt"  # CHECKPOINTS_DIR/best.ckpt (its SHA-256 in run.json: checkpoint_sha256)
RESUME_FILE = "last.ckpt"  # CHECKPOINTS_DIR/last.ckpt: an unfinished run's state at its last epoch end
SEQUENTIAL_FILE = "sequential.json"  # a sequential study's looks: seeds, nominal alpha, verdicts, why it stopped
PLAN_FILE = "plan.json"  # the planned runs, so that `bakeoff status` needs neither the data nor torch
