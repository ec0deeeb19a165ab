"""Converters from public step-labelled layouts to the stepwise format.

Each ``*_row`` function is pure: it takes one raw record and returns a stepwise row, or ``None`` when the record
has no usable step. :func:`convert_dataset` applies one to a ``datasets.Dataset`` and reports what it skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

logger = logging.getLogger(__name__)

Layout = Literal["stepwise", "prm800k", "math_shepherd", "processbench"]
LayoutOrAuto = Literal["auto", Layout]  # "auto": detected from the columns

MATH_SHEPHERD_TAG = "ки"
# PRM800K rates a step 1 (good), 0 (neutral: correct but unhelpful) or -1 (wrong). Neutral steps are not
# errors, so by default they count as correct, the convention the PRM800K authors use when they score a solution
# (a solution is judged by its first -1 step). Use ``neutral_label=False`` for the stricter "only 1 is good" reading.
DEFAULT_NEUTRAL_LABEL = True


def _completion_text(completion: Any) -> str | None:
    if completion is None:
        return None
    if isinstance(completion, str):
        return completion
    return completion.get("text")


def prm800k_row(record: dict[str, Any], neutral_label: bool | float = DEFAULT_NEUTRAL_LABEL) -> dict[str, Any] | None:
    """One line of openai/prm800k ``data/phase{1,2}_{train,test}.jsonl``.

    Per step the trajectory follows ``completions[chosen_completion]``, or the human completion when
    ``chosen_completion`` is null. When neither exists, the labeller stopped at this step because every
    candidate was rated -1: the first such candidate is the first error. A -1 step ends the row (label False);
    an unrated step ends it without a label.
    """
    prompt = (record.get("question") or {}).get("problem")
    steps = (record.get("label") or {}).get("steps") or []
    completions: list[str] = []
    labels: list[bool | float] = []
    for step in steps:
        candidates = step.get("completions") or []
        chosen = step.get("chosen_completion")
        if chosen is not None:
            candidate = candidates[chosen]
            text, rating = candidate.get("text"), candidate.get("rating")
        elif _completion_text(step.get("human_completion")):
            text, rating = _completion_text(step.get("human_completion")), 1
        else:
            wrong = [c for c in candidates if c.get("rating") == -1]
            if not wrong:
                break
            text, rating = wrong[0].get("text"), -1
        if rating is None or not text or not text.strip():
            break
        if rating == -1:
            completions.append(text)
            labels.append(False)
            break
        completions.append(text)
        labels.append(True if rating == 1 else neutral_label)
    if not prompt or not completions:
        return None
    return {"prompt": prompt, "completions": completions, "labels": labels}


def math_shepherd_row(record: dict[str, Any], tag: str = MATH_SHEPHERD_TAG) -> dict[str, Any] | None:
    """One row of Math-Shepherd (``input``, ``label``): steps end with ``ки``; in ``label`` it is ``+`` or ``-``."""
    text, label_text = record["input"], record["label"]
    segments = text.split(tag)
    if len(segments) < 2:
        return None
    head, step_segments = segments[0], segments[1:-1]
    # The problem precedes "Step 1:"; without that marker the first line is the problem.
    marker = head.find("Step 1:")
    if marker == -1:
        marker = head.find("\n") + 1 if "\n" in head else 0
    prompt, first_step = head[:marker].strip(), head[marker:]
    raw_steps = [first_step, *step_segments]
    labels: list[bool] = []
    position = 0
    for segment in segments[:-1]:
        position += len(segment)
        verdict = label_text[position : position + 1]
        if verdict not in ("+", "-"):
            raise ValueError(
                f"Math-Shepherd row: 'label' does not match 'input' at character {position} (found {verdict!r})"
            )
        labels.append(verdict == "+")
        position += 1
    completions = [step.strip() for step in raw_steps]
    if not prompt or any(not step for step in completions):
        return None
    return {"prompt": prompt, "completions": completions, "labels": labels}


def processbench_row(record: dict[str, Any]) -> dict[str, Any] | None:
    """One ProcessBench solution: steps before ``label`` are correct, step ``label`` is the first error."""
    steps, first_error = list(record["steps"]), int(record["label"])
    if first_error >= len(steps):
        raise ValueError(f"ProcessBench row {record.get('id')!r}: label {first_error} >= {len(steps)} steps")
    if first_error >= 0:
        steps = steps[: first_error + 1]
        labels = [True] * first_error + [False]
    else:
        labels = [True] * len(steps)
    if not steps:
        return None
    row = {"prompt": record["problem"], "completions": steps, "labels": labels}
    if record.get("id") is not None:
        row["id"] = str(record["id"])
    return row


CONVERTERS: dict[str, Callable[..., dict[str, Any] | None]] = {
    "prm800k": prm800k_row,
    "math_shepherd": math_shepherd_row,
    "processbench": processbench_row,
}


def detect_layout(column_names: list[str]) -> Layout:
    """Guess a dataset's layout from its columns."""
    columns = set(column_names)
    if {"prompt", "completions", "labels"} <= columns:
        return "stepwise"
    if {"question", "label"} <= columns:
        return "prm800k"
    if {"input", "label"} <= columns:
        return "math_shepherd"
    if {"problem", "steps", "label"} <= columns:
        return "processbench"
    raise ValueError(
        f"Cannot tell the layout of a dataset with columns {sorted(columns)}; expected stepwise "
        "(prompt, completions, labels), prm800k (question, label), math_shepherd (input, label) "
        "or processbench (problem, steps, label)."
    )


def convert_dataset(dataset, layout: LayoutOrAuto = "auto", num_proc: int | None = None, **kwargs):
    """Convert a ``datasets.Dataset`` to the stepwise format; rows with no usable step are counted and dropped."""
    if layout == "auto":
        layout = detect_layout(dataset.column_names)
    if layout == "stepwise":
        return dataset
    convert = CONVERTERS[layout]

    def apply(batch):
        keys = list(batch)
        out: dict[str, list] = {"prompt": [], "completions": [], "labels": [], "id": [], "usable": []}
        for i in range(len(batch[keys[0]])):
            row = convert({k: batch[k][i] for k in keys}, **kwargs)
            out["usable"].append(row is not None)
            row = row or {"prompt": "", "completions": [], "labels": []}
            for key in ("prompt", "completions", "labels"):
                out[key].append(row[key])
            out["id"].append(row.get("id"))
        return out

    converted = dataset.map(
        apply, batched=True, num_proc=num_proc, remove_columns=dataset.column_names, desc=f"Converting {layout}"
    )
    usable = converted.select_columns(["usable"]).with_format("numpy")[:]["usable"]
    skipped = int((~usable).sum())
    if skipped:
        logger.warning("%s: %d of %d records have no usable step and were skipped", layout, skipped, len(usable))
        converted = converted.select(usable.nonzero()[0])
    converted = converted.remove_columns("usable")
    if all(x is None for x in converted["id"]):
        converted = converted.remove_columns("id")
    return converted
