"""The stepwise format: one row per solution, one label per step.

A row is ``{"prompt": str, "completions": list[str], "labels": list[bool | float], "id": optional}``.
A float label in [0, 1] is a soft label (e.g. a Monte-Carlo success rate); booleans are hard labels.
Validation runs before any training or evaluation so that a bad row fails loudly instead of being dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

REQUIRED_FIELDS = ("prompt", "completions", "labels")


class StepwiseFormatError(ValueError):
    """A row does not follow the stepwise format; the message names the row and the field."""

    def __init__(self, index: int, row_id: Any, field: str, problem: str):
        self.index, self.row_id, self.field, self.problem = index, row_id, field, problem
        where = f"row {index}" + (f" (id={row_id!r})" if row_id is not None else "")
        super().__init__(f"{where}: field '{field}' {problem}")


def split_steps(text: str, separator: str) -> list[str]:
    """The steps of a solution text: split on ``separator``, each piece stripped of surrounding whitespace, empty
    pieces dropped. Search, pool re-scoring and the arithmetic demo all cut solutions this way, so a verifier scores
    the same step strings whichever of them produced the row."""
    return [s for s in (piece.strip() for piece in text.split(separator)) if s]


def _check_row(row: Mapping[str, Any], index: int) -> None:
    row_id = row.get("id")

    def fail(field: str, problem: str) -> None:
        raise StepwiseFormatError(index, row_id, field, problem)

    for field in REQUIRED_FIELDS:
        if row.get(field) is None:
            fail(field, "is missing")
    if not isinstance(row["prompt"], str):
        fail("prompt", f"must be a string, got {type(row['prompt']).__name__}")
    completions, labels = row["completions"], row["labels"]
    if isinstance(completions, str) or not isinstance(completions, (list, tuple)):
        fail("completions", f"must be a list of strings, got {type(completions).__name__}")
    if isinstance(labels, (str, bytes)) or not isinstance(labels, (list, tuple)):
        fail("labels", f"must be a list of booleans or floats, got {type(labels).__name__}")
    if len(completions) == 0:
        fail("completions", "is empty (a row needs at least one step)")
    if len(labels) != len(completions):
        fail("labels", f"has {len(labels)} entries but 'completions' has {len(completions)}")
    for step_index, step in enumerate(completions):
        if not isinstance(step, str):
            fail("completions", f"step {step_index} must be a string, got {type(step).__name__}")
        if not step.strip():
            fail("completions", f"step {step_index} is empty")
    for step_index, label in enumerate(labels):
        if isinstance(label, bool):
            continue
        if not isinstance(label, (int, float)) or isinstance(label, complex):
            fail("labels", f"label {step_index} must be a bool or a float in [0, 1], got {label!r}")
        if math.isnan(label) or not 0.0 <= label <= 1.0:
            fail("labels", f"label {step_index} is {label!r}, outside [0, 1]")


def validate_rows(rows: Iterable[Mapping[str, Any]]) -> int:
    """Check every row; raise :class:`StepwiseFormatError` at the first bad one. Returns the row count."""
    count = 0
    for index, row in enumerate(rows):
        _check_row(row, index)
        count += 1
    return count


def validate_dataset(dataset) -> int:
    """Validate a ``datasets.Dataset`` (or any iterable of rows) in the stepwise format."""
    column_names = getattr(dataset, "column_names", None)
    if column_names is not None:
        missing = [field for field in REQUIRED_FIELDS if field not in column_names]
        if missing:
            raise StepwiseFormatError(0, None, missing[0], f"is missing from the dataset (columns: {column_names})")
    return validate_rows(dataset)


def has_soft_labels(labels: Iterable[Any]) -> bool:
    """True when any label is a non-integral float (a soft label); 0.0 and 1.0 count as hard."""
    return any(not isinstance(x, bool) and float(x) not in (0.0, 1.0) for x in labels)
