"""What is measured on a trained model: scores of its saved predictions, inference speed, Grad-CAM."""

from bakeoff.measure.metrics import evaluate_predictions, load_predictions
from bakeoff.measure.speed import measure_inference

__all__ = ["evaluate_predictions", "load_predictions", "measure_inference"]
