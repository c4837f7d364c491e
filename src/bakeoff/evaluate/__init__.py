"""Evaluation from saved predictions, and inference speed."""

from bakeoff.evaluate.metrics import evaluate_predictions, load_predictions
from bakeoff.evaluate.speed import measure_inference

__all__ = ["evaluate_predictions", "load_predictions", "measure_inference"]
