"""Re-score a stored candidate pool with another verifier ("swap verifiers" without regenerating)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm

from prm.verifiers.aggregation import AggStrategy, aggregate_scores

from .pool import check_pool_row, grade_pool, pool_steps, row_location, weighted_answer

logger = logging.getLogger(__name__)


def rescore_rows(
    rows: Sequence[dict[str, Any]],
    verifier,
    agg_strategy: AggStrategy = "last",
    separator: str = "\n\n",
    grader=None,
    show_progress: bool = True,
    source: str | None = None,
) -> list[dict[str, Any]]:
    """New rows with ``scores`` (per completion, per step) from ``verifier``, and ``agg_scores``, ``pred`` (weighted
    vote) and ``verifier_tokens`` (tokens this verifier ran for the problem) to match; the other fields are kept.

    A completion's steps are ``row["steps"]`` when stored, else its text cut by :func:`prm.data.split_steps` on
    ``separator`` (pieces stripped, empty ones dropped). One ``verifier.score`` call per problem, so verifier tokens
    are attributed exactly. A malformed row is an error naming ``source`` (the results file) and its line, raised
    before anything is scored.
    """
    from prm.grading import default_grader

    for i, row in enumerate(rows):  # every row checked before any is scored
        check_pool_row(row, row_location(row, i, source), need_scores=False)
    grader = grader or default_grader()
    out = []
    for row in tqdm(rows, desc="re-scoring", disable=not show_progress):
        new = dict(row)
        steps = pool_steps(row, separator) if row.get("completions") else []
        before = verifier.tokens_processed
        scores = verifier.score([row["problem"]] * len(steps), steps) if steps else []
        new["steps"] = steps
        new["scores"] = scores
        new["agg_scores"] = [aggregate_scores(s, agg_strategy) for s in scores]
        new["verifier_tokens"] = verifier.tokens_processed - before
        if steps:
            new["pred"] = weighted_answer(grade_pool(new, grader, agg_strategy)) or ""
        out.append(new)
    return out
