"""Finished search runs as numbers: per strategy (run, vote, pool size n) and per problem, correctness and cost.

A run is one ``results.jsonl`` (layout in :mod:`search.results`). Best-of-N pools are independent samples, so the
first n of them are a Best-of-N run at budget n (the prefix convention of :mod:`eval.pool`); a beam search or DVTS
pool is the outcome of its whole search and gives one budget, its own N.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..pool import GradedPool, grade_pool, pool_correct_at, subset_sizes
from .compute import flops

logger = logging.getLogger(__name__)

Vote = Literal["weighted", "maj", "naive"]
REQUIRED_FIELDS = ("index", "problem", "answer", "completions", "scores", "completion_tokens")
COST_FIELDS = ("generated_tokens", "verifier_tokens")
AXES = ("n", "tokens", "flops")


@dataclass
class Run:
    """One finished run: its rows and what the analysis needs to know about it."""

    name: str  # the directory, used in every error message
    rows: list[dict[str, Any]]
    label: str = ""  # curve label (method, plus policy / verifier when several are compared)
    method: str = ""
    policy_params: float = 0.0
    verifier_params: float = 0.0
    prompt_tokens: np.ndarray | None = None  # per problem, in problem order; None: zero (stated in the output)


@dataclass
class Strategy:
    """A way to spend compute on every problem: a run's first ``n`` completions decided by ``vote``."""

    run: str
    label: str
    method: str
    vote: str
    n: int

    @property
    def name(self) -> str:
        return f"{self.label} {self.vote}@{self.n}"


@dataclass
class StrategyTable:
    """``correct[s, p]`` (0..1) and ``cost[axis][s, p]`` for strategies ``s`` over problems ``p``."""

    strategies: list[Strategy]
    problems: list[int]  # dataset indices, the column order
    correct: np.ndarray
    cost: dict[str, np.ndarray] = field(default_factory=dict)


def run_method(run: Run) -> str:
    """The run's search method, from its rows (``method``) or as set on the run."""
    methods = {row.get("method") for row in run.rows} - {None}
    if len(methods) > 1:
        raise ValueError(f"run {run.name}: rows of several methods {sorted(methods)}; one run is one method")
    method = methods.pop() if methods else run.method
    if not method:
        raise ValueError(f"run {run.name}: rows have no 'method' field and search_config.json names none")
    return method


def check_rows(run: Run) -> None:
    """Every field the analysis reads is present in every row; indices are unique."""
    if not run.rows:
        raise ValueError(f"run {run.name}: no results")
    seen: set[int] = set()
    for row in run.rows:
        for name in REQUIRED_FIELDS + COST_FIELDS:
            if name not in row:
                raise ValueError(
                    f"run {run.name}: row index={row.get('index', '?')} has no field {name!r} "
                    "(the analysis needs completions, scores, token counts and the gold answer)"
                )
        if row["index"] in seen:
            raise ValueError(f"run {run.name}: problem index {row['index']} appears twice")
        seen.add(row["index"])


def check_same_problems(runs: Sequence[Run]) -> list[int]:
    """The problem indices every run shares; a run over other or fewer problems is an error naming it."""
    reference = runs[0]
    problems = {row["index"]: row["problem"] for row in reference.rows}
    for run in runs[1:]:
        mine = {row["index"]: row["problem"] for row in run.rows}
        if len(mine) != len(problems):
            raise ValueError(
                f"run {run.name} has {len(mine)} problems but run {reference.name} has {len(problems)}: every run "
                f"must cover the same problems (missing in {run.name}: {sorted(set(problems) - set(mine))[:10]})"
            )
        if mine.keys() != problems.keys():
            raise ValueError(
                f"run {run.name} covers other problems than run {reference.name} (indices only in {run.name}: "
                f"{sorted(set(mine) - set(problems))[:10]})"
            )
        differing = [i for i in problems if mine[i] != problems[i]]
        if differing:
            raise ValueError(
                f"run {run.name}: problem index {differing[0]} has another text than in run {reference.name}: "
                "the runs are over different problem sets"
            )
    return sorted(problems)


def grade_run(run: Run, problems: Sequence[int], grader, agg_strategy: str) -> list[GradedPool]:
    """Graded pools in ``problems`` order (answers grouped and checked as :func:`eval.pool.grade_pool` does)."""
    by_index = {row["index"]: row for row in run.rows}
    try:
        return [grade_pool(by_index[i], grader, agg_strategy) for i in problems]
    except ValueError as error:
        raise ValueError(f"run {run.name}: {error}") from None


def run_budgets(method: str, pools: Sequence[GradedPool]) -> list[int]:
    """Pool sizes a run gives: 1, 2, 4, ..., N for Best-of-N; its own N for tree search."""
    size = max((len(p.keys) for p in pools), default=0)
    if size == 0:
        return []
    return subset_sizes(size) if method == "best_of_n" else [size]


def strategy_columns(
    run: Run, method: str, pools: Sequence[GradedPool], rows: Sequence[dict], n: int, vote: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per problem: correctness, generated tokens and verifier tokens of ``vote`` over the first ``n`` completions."""
    correct = np.array([pool_correct_at(pool, n)[vote] if pool.keys else False for pool in pools], dtype=float)
    generated = np.empty(len(pools))
    verifier = np.empty(len(pools))
    for p, (pool, row) in enumerate(zip(pools, rows)):
        size = len(pool.keys)
        if method == "best_of_n":
            generated[p] = sum(row["completion_tokens"][:n])
            # A prefix is scored completion by completion; majority vote needs no verifier at all.
            verifier[p] = 0.0 if vote == "maj" else row["verifier_tokens"] * min(n, size) / max(size, 1)
        else:
            generated[p] = row["generated_tokens"]
            verifier[p] = row["verifier_tokens"]
    return correct, generated, verifier


def grade_runs(runs: Sequence[Run], grader, agg_strategy: str = "last") -> tuple[list[int], dict[str, list]]:
    """Check the runs (fields, same problems) and grade each: ``(problem indices, {run name: pools})``."""
    for run in runs:
        check_rows(run)
    problems = check_same_problems(runs)
    return problems, {run.name: grade_run(run, problems, grader, agg_strategy) for run in runs}


def pool_difficulty(runs: Sequence[Run], pools: dict[str, list[GradedPool]]) -> tuple[str, np.ndarray, np.ndarray]:
    """Difficulty scores from the largest Best-of-N pool (else the largest pool): the oracle's pass rate against
    the gold answer, and the predicted one, the mean verifier score (no gold answer needed); higher is easier."""

    def size(run: Run) -> tuple[bool, int]:
        return run_method(run) == "best_of_n", max(len(p.keys) for p in pools[run.name])

    source = max(runs, key=size)
    graded = pools[source.name]
    oracle = np.array(
        [np.mean([p.correct.get(k, False) if k else False for k in p.keys]) if p.keys else 0.0 for p in graded]
    )
    predicted = np.array([np.mean(p.scores) if p.scores else 0.0 for p in graded])
    return source.name, oracle, predicted


def build_table(
    runs: Sequence[Run],
    problems: Sequence[int],
    pools: dict[str, list[GradedPool]],
    votes: Sequence[str] = ("weighted", "maj", "naive"),
) -> StrategyTable:
    """Every (run, vote, n) strategy with its correctness and its cost on the three axes (n, tokens, flops)."""
    strategies, correct, cost = [], [], {axis: [] for axis in AXES}
    for run in runs:
        method = run_method(run)
        by_index = {row["index"]: row for row in run.rows}
        rows = [by_index[i] for i in problems]
        prompt = run.prompt_tokens if run.prompt_tokens is not None else np.zeros(len(problems))
        for n in run_budgets(method, pools[run.name]):
            for vote in votes:
                ok, generated, verifier = strategy_columns(run, method, pools[run.name], rows, n, vote)
                strategies.append(Strategy(run.name, run.label or method, method, vote, n))
                correct.append(ok)
                cost["n"].append(np.full(len(problems), float(n)))
                cost["tokens"].append(generated)
                cost["flops"].append(flops(run.policy_params, prompt, generated, run.verifier_params, verifier))
    if not strategies:
        raise ValueError("no run has any completion")
    return StrategyTable(strategies, list(problems), np.array(correct), {a: np.array(c) for a, c in cost.items()})
