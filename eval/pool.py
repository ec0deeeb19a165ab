"""Accuracy of candidate pools at n = 1, 2, 4, ..., N: naive@n, weighted@n, maj@n and pass@n.

Subsampling follows search-and-learn (``sal/utils/score.py`` and ``subsample_completions`` in ``sal/utils/math.py``):
the pool of size n is the **first n completions** of the problem's pool, in stored order, not a random subset (the
search methods emit completions in groups, e.g. DVTS subtrees, that a prefix keeps whole); n runs over the powers of
two up to N. Unlike search-and-learn, N itself is added when it is not a power of two, and the solution score is
aggregated with the requested ``agg_strategy`` (search-and-learn always used ``last`` there). For pools of tree
search (rows whose ``method`` is beam_search or dvts) only n = N is reported: such a pool's prefix is not what a
run with a smaller budget would return (beam search stores its pool sorted by score), so compare budgets with
separate runs.

For a problem's first n completions (answers from :func:`prm.grading.extract_answer`, solution scores
``aggregate_scores(step_scores, agg_strategy)``):

- ``naive@n``: the answer of the highest-scored completion (ties: the earliest). No answer counts as wrong.
- ``weighted@n``: the answer group with the largest sum of scores (ties: the group seen first).
- ``maj@n``: the answer group with the most completions (ties: the group seen first).
- ``pass@n``: whether any of the n completions is correct (search-and-learn also reports the unbiased pass@k
  estimator over all N samples; for tree search pools the prefix definition is the one that matches the others).

Answers are grouped by :meth:`prm.grading.MathGrader.canonical`: math-verify's parsed value (numbers by value,
``x = 3`` as ``3``, other expressions by sympy's printed form), else the normalized string. Completions without an
answer take no part in weighted and majority votes (search-and-learn let the empty answer "" form a group); if none
has an answer the prediction is "no answer" (wrong). A group is correct when its first answer is equivalent to the
gold answer (math-verify ``verify``). Accuracies are percentages over problems.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prm.data.format import split_steps
from prm.verifiers.aggregation import AggStrategy, aggregate_scores

logger = logging.getLogger(__name__)

METRICS: tuple[str, ...] = ("naive", "weighted", "maj", "pass")
# Their pools are not prefix-closed: beam search stores its pool sorted by score, and a prefix of a DVTS pool
# cuts subtrees or, at best, stands in for a run with fewer subtrees that was never made.
TREE_METHODS: tuple[str, ...] = ("beam_search", "dvts")


def subset_sizes(n_max: int) -> list[int]:
    """1, 2, 4, ... up to ``n_max``, and ``n_max`` itself."""
    sizes, n = [], 1
    while n <= n_max:
        sizes.append(n)
        n *= 2
    if n_max >= 1 and sizes[-1] != n_max:
        sizes.append(n_max)
    return sizes


def naive_choice(keys: Sequence[str | None], scores: Sequence[float]) -> str | None:
    """Key of the highest-scored completion (the earliest on ties); None when it has no answer."""
    if not keys:
        return None
    best = max(range(len(keys)), key=lambda i: (scores[i], -i))
    return keys[best]


def weighted_choice(keys: Sequence[str | None], scores: Sequence[float]) -> str | None:
    """The answer key whose completions' scores sum highest (the one seen first on ties)."""
    totals: dict[str, float] = {}
    for key, score in zip(keys, scores):
        if key is not None:
            totals[key] = totals.get(key, 0.0) + score
    return max(totals, key=totals.__getitem__) if totals else None


def majority_choice(keys: Sequence[str | None]) -> str | None:
    """The answer key given by the most completions (the one seen first on ties)."""
    counts: dict[str, int] = {}
    for key in keys:
        if key is not None:
            counts[key] = counts.get(key, 0) + 1
    return max(counts, key=counts.__getitem__) if counts else None


def answer_keys(answers: Sequence[str | None], grader) -> list[str | None]:
    """The answer group of each extracted answer: ``grader.canonical`` (None: no answer)."""
    return [None if a is None else grader.canonical(a) for a in answers]


def weighted_vote(answers: Sequence[str | None], scores: Sequence[float], grader) -> str | None:
    """The weighted vote over canonical answers: the answer (first of its group) whose group's scores sum highest.

    This is the one weighted vote of the toolkit: search writes it as ``pred`` in results.jsonl, re-scoring
    rewrites ``pred`` with it, and ``weighted@n`` is the same choice (:func:`weighted_choice` over the same keys).
    None when no completion has an answer.
    """
    keys = answer_keys(answers, grader)
    key = weighted_choice(keys, scores)
    return None if key is None else answers[keys.index(key)]


@dataclass
class GradedPool:
    """One problem's pool, reduced to what the metrics need."""

    keys: list[str | None]  # answer group per completion (None: no answer)
    answers: list[str | None]  # extracted answer per completion
    scores: list[float]  # aggregated score per completion
    correct: dict[str, bool]  # per answer group
    completion_tokens: list[int] | None = None


def pool_correct_at(pool: GradedPool, n: int) -> dict[str, bool]:
    """naive/weighted/maj/pass correctness on the first ``n`` completions of one problem."""
    keys, scores = pool.keys[:n], pool.scores[:n]

    def ok(key: str | None) -> bool:
        return key is not None and pool.correct.get(key, False)

    return {
        "naive": ok(naive_choice(keys, scores)),
        "weighted": ok(weighted_choice(keys, scores)),
        "maj": ok(majority_choice(keys)),
        "pass": any(ok(k) for k in keys),
    }


def pool_steps(row: dict[str, Any], separator: str = "\n\n") -> list[list[str]]:
    """The steps of each completion: ``row["steps"]`` if present, else the completions cut by
    :func:`prm.data.split_steps` (on ``separator``, pieces stripped, empty ones dropped)."""
    if row.get("steps") is not None:
        return row["steps"]
    return [split_steps(c, separator) for c in row["completions"]]


def row_location(row: Any, position: int, source: str | None = None) -> str:
    """How errors name a pool row: the file and line (rows of a results file are one per line), and its index."""
    index = row.get("index", "?") if isinstance(row, dict) else "?"
    return f"{source}, line {position + 1} (index={index})" if source else f"results row {position} (index={index})"


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def check_pool_row(row: Any, where: str, need_scores: bool = True) -> None:
    """A ValueError naming ``where`` and the field unless ``row`` is a usable results row.

    Needed: ``completions`` (list of strings), ``answer`` (the gold answer), and, unless the pool is about to be
    re-scored, ``scores`` (one list of numbers per completion); re-scoring needs ``problem`` instead. Optional
    ``steps`` and ``completion_tokens`` must have one entry per completion.
    """
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
    required = ("completions", "answer", "scores") if need_scores else ("completions", "answer", "problem")
    for field in required:
        if field not in row:
            raise ValueError(f"{where}: missing field {field!r}")
    completions = row["completions"]
    if not isinstance(completions, list) or not all(isinstance(c, str) for c in completions):
        raise ValueError(f"{where}: field 'completions' must be a list of strings")
    if row["answer"] is None or isinstance(row["answer"], (bool, list, dict)):
        raise ValueError(
            f"{where}: field 'answer' must be the gold answer (a string or number), got {row['answer']!r}"
        )
    if not need_scores and not isinstance(row["problem"], str):
        raise ValueError(f"{where}: field 'problem' must be a string")
    per_completion = {"scores": need_scores, "steps": False, "completion_tokens": False}
    for field, required_here in per_completion.items():
        value = row.get(field)
        if value is None and not required_here:
            continue
        if not isinstance(value, list) or len(value) != len(completions):
            size = len(value) if isinstance(value, list) else type(value).__name__
            raise ValueError(f"{where}: field {field!r} has {size} entries for {len(completions)} completions")
        if field == "scores" and not all(isinstance(s, list) and all(_is_number(x) for x in s) for s in value):
            raise ValueError(f"{where}: field 'scores' must hold one list of numbers per completion")
        if field == "steps" and not all(isinstance(s, list) and all(isinstance(x, str) for x in s) for s in value):
            raise ValueError(f"{where}: field 'steps' must hold one list of strings per completion")
        if field == "completion_tokens" and not all(_is_number(x) for x in value):
            raise ValueError(f"{where}: field 'completion_tokens' must hold one number per completion")


def grade_pool(
    row: dict[str, Any], grader, agg_strategy: AggStrategy = "last", where: str | None = None
) -> GradedPool:
    """Extract, group and grade the answers of one results row (see the module docstring)."""
    from prm.grading import extract_answer

    check_pool_row(row, where or f"results row (index={row.get('index', '?') if isinstance(row, dict) else '?'})")
    completions, step_scores = row["completions"], row["scores"]
    answers = [extract_answer(text) for text in completions]
    keys = answer_keys(answers, grader)
    representative: dict[str, str] = {}
    for key, answer in zip(keys, answers):
        if key is not None:
            representative.setdefault(key, answer)
    gold = str(row["answer"])
    correct = {key: grader.equivalent(answer, gold) for key, answer in representative.items()}
    tokens = row.get("completion_tokens")
    return GradedPool(keys, answers, [aggregate_scores(s, agg_strategy) for s in step_scores], correct, tokens)


def weighted_answer(pool: GradedPool) -> str | None:
    """:func:`weighted_vote` over the whole pool, from its already computed answer groups."""
    key = weighted_choice(pool.keys, pool.scores)
    return None if key is None else pool.answers[pool.keys.index(key)]


def metrics_from_pools(pools: Sequence[GradedPool], ns: Sequence[int] | None = None) -> dict[str, Any]:
    """Accuracy (%) per metric and n over problems; for problems with fewer than n completions all are used.
    ``generated_tokens`` is the mean over problems of the first n completions' tokens, when they are known."""
    if not pools:
        raise ValueError("No problems to evaluate")
    n_max = max(len(p.keys) for p in pools)
    ns = list(ns) if ns is not None else subset_sizes(n_max)
    out: dict[str, Any] = {m: {} for m in METRICS}
    for n in ns:
        hits = {m: 0 for m in METRICS}
        for pool in pools:
            for metric, ok in pool_correct_at(pool, n).items():
                hits[metric] += ok
        for metric in METRICS:
            out[metric][n] = 100.0 * hits[metric] / len(pools)
    if all(p.completion_tokens is not None for p in pools):
        out["generated_tokens"] = {n: sum(sum(p.completion_tokens[:n]) for p in pools) / len(pools) for n in ns}
    sizes = [len(p.keys) for p in pools]
    out["num_problems"] = len(pools)
    out["num_completions"] = {"min": min(sizes), "max": max(sizes)}
    out["no_answer_rate"] = 100.0 * sum(k is None for p in pools for k in p.keys) / max(1, sum(sizes))
    return out


def pool_table(metrics: dict[str, Any]) -> str:
    """The accuracies of :func:`pool_metrics` as printed by the recipes, with the note on which budgets they are."""
    lines = [f"{m:>8}@n  " + "  ".join(f"{n}:{acc:5.1f}" for n, acc in metrics[m].items()) for m in METRICS]
    if metrics.get("budgets_note"):
        lines.append(f"({metrics['budgets_note']})")
    return "\n".join(lines)


def pool_metrics(
    rows: Sequence[dict[str, Any]],
    agg_strategy: AggStrategy = "last",
    grader=None,
    ns: Sequence[int] | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """Metrics of results rows: ``{"naive": {n: acc}, "weighted": ..., "maj": ..., "pass": ..., counts}``.

    Rows without completions are skipped (counted in ``skipped_problems`` and logged). A malformed row is an error
    naming ``source`` (the results file) and its line. Totals of
    ``generated_tokens``/``verifier_tokens`` per problem are averaged when the rows carry them.
    """
    from prm.grading import default_grader

    grader = grader or default_grader()
    for i, row in enumerate(rows):
        check_pool_row(row, row_location(row, i, source))
    kept = [(i, r) for i, r in enumerate(rows) if r["completions"]]
    skipped = len(rows) - len(kept)
    if skipped:
        logger.warning("Skipping %d of %d problems without completions", skipped, len(rows))
    pools = [grade_pool(r, grader, agg_strategy, row_location(r, i, source)) for i, r in kept]
    kept = [r for _, r in kept]
    methods = sorted({str(r["method"]) for r in kept if r.get("method")})
    tree = [m for m in methods if m in TREE_METHODS]
    if ns is None and tree and pools:
        ns = [max(len(p.keys) for p in pools)]  # only the budget the search ran
    out = metrics_from_pools(pools, ns)
    out["agg_strategy"] = agg_strategy
    out["methods"] = methods
    out["budgets_note"] = (
        f"{'/'.join(tree)}: only n = N, the budget the search ran (a prefix of a tree-search pool is not the result "
        "of a run with a smaller budget)"
        if tree
        else "n < N: the first n completions of each pool (for Best-of-N, a run with budget n)"
    )
    out["skipped_problems"] = skipped
    for field in ("generated_tokens", "verifier_tokens"):
        if kept and all(isinstance(r.get(field), (int, float)) for r in kept):
            out[f"mean_{field}_per_problem"] = sum(r[field] for r in kept) / len(kept)
    return out


def write_pool_metrics(
    rows: Sequence[dict[str, Any]],
    output_dir: str | os.PathLike,
    agg_strategy: AggStrategy,
    grader,
    source: str | None = None,
    title: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The one writer of a pool's metrics (search runs and ``recipes/evaluate_pool.py``): :func:`pool_metrics`, the
    grader's ``grading_timeouts`` and ``extra`` fields in ``OUT/metrics.json``, and the ``OUT/scaling.png`` plot."""
    from prm.atomic import write_text

    from .plots import plot_pool_scaling

    metrics = pool_metrics(rows, agg_strategy, grader, source=source)
    metrics["grading_timeouts"] = grader.timeouts
    metrics.update(extra)
    write_text(os.path.join(output_dir, "metrics.json"), json.dumps(metrics, indent=2) + "\n")
    plot_pool_scaling(metrics, os.path.join(output_dir, "scaling.png"), title=title)
    return metrics
