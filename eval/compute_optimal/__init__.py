"""Compute-optimal test-time scaling over finished search runs, and equal-compute comparison across policies.

Per budget (N, generated tokens or FLOPs per problem) and per difficulty level of the problems, the best method and
setting is chosen (Snell et al. 2024, "Scaling LLM Test-Time Compute Optimally"); difficulty is binned two ways,
oracle (pass rate of the largest Best-of-N pool against the gold answer) and predicted (mean verifier score of that
pool, no gold answer). The choice is cross-fitted (chosen on one half of the problems, reported on the other, both
ways round) and also reported in-sample (optimistic). Intervals are 95% percentile bootstraps over problems that
repeat the choice inside every resample. Other policies' runs become single-sample and majority reference points on
the FLOPs axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .analysis import Reference, analyse, reference_from_run
from .compute import FLOPS_APPROXIMATION, count_parameters
from .runs import Run, Strategy, StrategyTable, build_table, grade_runs, pool_difficulty

__all__ = [
    "FLOPS_APPROXIMATION",
    "Reference",
    "Run",
    "Strategy",
    "StrategyTable",
    "analyse",
    "build_table",
    "compute_optimal",
    "count_parameters",
    "grade_runs",
    "pool_difficulty",
    "reference_from_run",
]


def compute_optimal(
    runs: Sequence[Run],
    reference_runs: Sequence[Run] = (),
    grader=None,
    num_bins: int = 5,
    votes: Sequence[str] = ("weighted", "maj", "naive"),
    agg_strategy: str = "last",
    bootstrap_samples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Grade every run (all on the same problems), build the strategies and analyse them (see :func:`analyse`)."""
    if grader is None:
        from prm.grading import default_grader

        grader = default_grader()
    problems, pools = grade_runs([*runs, *reference_runs], grader, agg_strategy)
    table = build_table(runs, problems, pools, votes)
    source, oracle, predicted = pool_difficulty(runs, pools)
    references = [reference_from_run(run, pools[run.name], problems) for run in reference_runs]
    result = analyse(table, {"oracle": oracle, "predicted": predicted}, references, num_bins, bootstrap_samples, seed)
    result["difficulty"] = {
        "from_run": source,
        "oracle": "pass rate of the run's samples against the gold answer",
        "predicted": f"mean verifier score ({agg_strategy} over steps) of the run's samples; no gold answer",
        "levels": "1 = easiest (highest score) ... num_bins = hardest; equal-size quantiles, ties by problem order",
    }
    result["flops_approximation"] = FLOPS_APPROXIMATION
    result["agg_strategy"] = agg_strategy
    result["votes"] = list(votes)
    result["bootstrap_samples"] = bootstrap_samples
    result["seed"] = seed
    result["selection"] = (
        "per budget, only strategies whose mean cost per problem is within the budget; per bin the one with the "
        "most right answers (cheapest on ties). cross_fitted: chosen on one half of the problems (split balanced "
        "within bins), reported on the other, both ways round; in_sample_optimistic: chosen and reported on all. "
        "best_single: the same with one bin."
    )
    return result
