"""Evaluation metrics of a PRM on labelled steps: step accuracy, wrong-step precision/recall, first-error F1."""

from __future__ import annotations

import numpy as np
import torch

from prm.data import IGNORE_INDEX
from prm.first_error import first_error_from_scores, first_error_index, processbench_scores


def correct_step_probability(logits: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """P(step correct) per token from ``[..., 2]`` logits; used to shrink what evaluation keeps in memory."""
    return torch.softmax(logits.float(), dim=-1)[..., 1]


def step_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Metrics over every labelled position (label != -100) of a ``[rows, tokens]`` batch.

    ``scores`` is P(step correct). Soft labels count as correct when >= ``threshold``. The "wrong step" class is
    the positive class for precision/recall: it is the error a PRM exists to catch.
    """
    mask = labels != IGNORE_INDEX
    gold_correct = labels[mask] >= threshold
    pred_correct = scores[mask] >= threshold
    gold_wrong, pred_wrong = ~gold_correct, ~pred_correct
    true_wrong = int((gold_wrong & pred_wrong).sum())
    return {
        "step_accuracy": float((gold_correct == pred_correct).mean()) if mask.any() else 0.0,
        "wrong_step_precision": true_wrong / int(pred_wrong.sum()) if pred_wrong.any() else 0.0,
        "wrong_step_recall": true_wrong / int(gold_wrong.sum()) if gold_wrong.any() else 0.0,
        "num_steps": int(mask.sum()),
    }


def first_error_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """ProcessBench-style metrics with one solution per row: exact first-error match on solutions with an
    error, all-correct prediction on fully correct ones, and their harmonic mean (F1), in percent."""
    gold, predicted = [], []
    for row_scores, row_labels in zip(scores, labels):
        mask = row_labels != IGNORE_INDEX
        if not mask.any():
            continue
        gold.append(first_error_index(list(row_labels[mask] >= threshold)))
        predicted.append(first_error_from_scores(list(row_scores[mask]), threshold))
    result = processbench_scores(gold, predicted)
    return {f"first_error_{key}": value for key, value in result.items()}


def compute_prm_metrics(eval_prediction) -> dict[str, float]:
    """``compute_metrics`` for :class:`prm.training.PRMTrainer` (predictions are P(correct) per token)."""
    scores = np.asarray(eval_prediction.predictions, dtype=np.float32)
    labels = np.asarray(eval_prediction.label_ids, dtype=np.float32)
    if scores.ndim == 3:  # raw logits from a caller that did not reduce them
        scores = correct_step_probability(torch.from_numpy(scores)).numpy()
    return {**step_metrics(scores, labels), **first_error_metrics(scores, labels)}
