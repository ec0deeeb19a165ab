"""Training process reward models: settings, trainer, batching, metrics, model card."""

from .collator import PRMDataCollator
from .config import PRMConfig
from .metrics import compute_prm_metrics, first_error_metrics, step_metrics
from .trainer import PRMTrainer, prm_loss_sum

__all__ = [
    "PRMConfig",
    "PRMDataCollator",
    "PRMTrainer",
    "compute_prm_metrics",
    "first_error_metrics",
    "prm_loss_sum",
    "step_metrics",
]
