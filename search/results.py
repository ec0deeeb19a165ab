"""The results layout: one JSON line per problem, appended as problems finish; resume and merge.

Each line: ``index`` (position in the full dataset), ``problem``, ``answer`` (gold), ``completions`` (full
solution texts), ``steps`` and ``scores`` (per completion, per step), ``pred`` (:func:`eval.pool.weighted_vote`
over all completions with the run's ``agg_strategy``: answers grouped by math-verify equivalence, as in the
metrics; "" when no completion has an answer), ``completion_tokens`` (per completion, along its path),
``generated_tokens`` and ``verifier_tokens`` (everything spent on the problem, pruned candidates included),
plus ``agg_scores``, ``complete``, ``method`` and ``seed``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from eval.pool import weighted_vote
from prm.atomic import atomic_write
from prm.verifiers.aggregation import AggStrategy, aggregate_scores

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"


def result_row(
    index: int,
    problem: str,
    answer: str,
    result,
    agg_strategy: AggStrategy,
    extract_answer: Callable[[str], str | None],
    grader,
    **extra: Any,
) -> dict[str, Any]:
    """One results line from a :class:`search.primitives.ProblemResult`; ``grader`` groups answers for ``pred``."""
    beams = result.beams
    agg = [aggregate_scores(b.scores, agg_strategy) for b in beams]
    return {
        "index": index,
        "problem": problem,
        "answer": answer,
        "completions": [b.text for b in beams],
        "steps": [b.steps for b in beams],
        "scores": [b.scores for b in beams],
        "agg_scores": agg,
        "pred": weighted_vote([extract_answer(b.text) for b in beams], agg, grader) or "",
        "complete": [b.complete for b in beams],
        "completion_tokens": [b.tokens for b in beams],
        "generated_tokens": result.generated_tokens,
        "verifier_tokens": result.verifier_tokens,
        **extra,
    }


def dumps(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False) + "\n"


def read_results(path: str | os.PathLike, repair: bool = False) -> list[dict[str, Any]]:
    """Rows of a results file. A run killed while writing can leave a partial last line: with ``repair`` it is
    cut off (and logged) so the run can resume; otherwise it is an error naming the line."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    rows, offset = [], 0
    for lineno, line in enumerate(data.splitlines(keepends=True), 1):
        try:
            if not line.endswith(b"\n"):
                raise ValueError("unterminated line")
            rows.append(json.loads(line))
        except ValueError as err:
            if repair and offset + len(line) == len(data):
                logger.warning(
                    "%s: dropping a partial last line (%d bytes) left by an interrupted run", path, len(line)
                )
                with open(path, "r+b") as f:
                    f.truncate(offset)
                break
            raise ValueError(f"{path}: line {lineno} is not a complete JSON object ({err})") from None
        offset += len(line)
    return rows


def append_rows(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        for row in rows:
            f.write(dumps(row))
            f.flush()
        os.fsync(f.fileno())


def merge_results(inputs: Sequence[str | os.PathLike], output: str | os.PathLike) -> list[dict[str, Any]]:
    """Join shard result files (or directories holding ``results.jsonl``) into one file ordered by index.

    The same problem in two shards must have identical rows (overlapping shards of one run); anything else is
    an error naming the index.
    """
    by_index: dict[int, dict[str, Any]] = {}
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            path = path / RESULTS_FILE
        if not path.is_file():
            raise FileNotFoundError(f"No results file at {path}")
        for row in read_results(path):
            previous = by_index.setdefault(row["index"], row)
            if previous is not row and previous != row:
                raise ValueError(f"Problem index {row['index']} appears in several shards with different results")
    rows = [by_index[i] for i in sorted(by_index)]
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(output) as f:
        f.writelines(dumps(r) for r in rows)
    logger.info("Merged %d problems from %d shard files into %s", len(rows), len(inputs), output)
    return rows


def read_run(directory: str | os.PathLike) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A finished run's rows and its settings (``search_config.json``, ``{}`` when the run has none)."""
    directory = Path(directory)
    path = directory / RESULTS_FILE if directory.is_dir() else directory
    if not path.is_file():
        raise FileNotFoundError(f"run {directory}: no {RESULTS_FILE}")
    settings_path = path.parent / "search_config.json"
    try:
        settings = json.loads(settings_path.read_text()) if settings_path.is_file() else {}
    except json.JSONDecodeError as err:
        raise ValueError(f"{settings_path}, line {err.lineno}: not valid JSON ({err.msg})") from None
    return read_results(path), settings
