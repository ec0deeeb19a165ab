"""ProcessBench metrics: predicted first error per solution, and accuracy/F1 per split."""

from __future__ import annotations

from collections.abc import Sequence


def first_error_index(step_correct: Sequence[bool]) -> int:
    """Index of the first step judged wrong, or -1 when every step is judged correct."""
    for i, ok in enumerate(step_correct):
        if not ok:
            return i
    return -1


def first_error_from_scores(step_scores: Sequence[float], threshold: float = 0.5) -> int:
    """First step whose probability of being correct is below ``threshold`` (the Qwen2.5-Math-PRM protocol)."""
    return first_error_index([s >= threshold for s in step_scores])


def harmonic_mean(a: float, b: float) -> float:
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def processbench_scores(labels: Sequence[int], predictions: Sequence[int]) -> dict[str, float]:
    """ProcessBench's metric for one split.

    ``error_acc``: among solutions with an error (label >= 0), the share whose predicted first error is exactly
    the labelled step. ``correct_acc``: among fully correct solutions (label -1), the share predicted -1.
    ``f1``: their harmonic mean. Both are percentages, as in the paper.
    """
    if len(labels) != len(predictions):
        raise ValueError(f"{len(labels)} labels but {len(predictions)} predictions")
    erroneous = [p == y for y, p in zip(labels, predictions) if y != -1]
    correct = [p == y for y, p in zip(labels, predictions) if y == -1]
    error_acc = 100.0 * sum(erroneous) / len(erroneous) if erroneous else 0.0
    correct_acc = 100.0 * sum(correct) / len(correct) if correct else 0.0
    return {
        "error_acc": error_acc,
        "correct_acc": correct_acc,
        "f1": harmonic_mean(error_acc, correct_acc),
        "num_erroneous": len(erroneous),
        "num_correct": len(correct),
    }
