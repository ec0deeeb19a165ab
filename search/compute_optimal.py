"""Compute-optimal analysis of finished search runs read from their directories (``recipes/compute_optimal.py``).

The glue between the results layout (:mod:`search.results`), the prompts the generator sent
(:mod:`search.generators.chat`) and the analysis itself (:mod:`eval.compute_optimal`); nothing is regenerated.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from eval.compute_optimal import compute_optimal
from eval.compute_optimal.config import ComputeOptimalArguments
from eval.compute_optimal.loading import make_runs
from eval.plots import plot_compute_optimal
from eval.pool import check_pool_row, row_location
from prm.atomic import write_text
from prm.grading import MathGrader
from prm.verifiers.arguments import load_prm

from .generators.chat import count_prompt_tokens
from .results import read_run

logger = logging.getLogger(__name__)


def read_runs(directories: list[str], args: ComputeOptimalArguments) -> list[tuple]:
    """``(directory, rows, settings)`` of each run, every row checked (named by file and row when malformed)."""
    contents = [(d, *read_run(d)) for d in directories]
    for directory, rows, _ in contents:  # every run checked before any model is loaded
        path = os.path.join(directory, "results.jsonl") if os.path.isdir(directory) else directory
        for i, row in enumerate(rows):
            check_pool_row(row, row_location(row, i, path), need_scores=not args.prm_path)
    return contents


def rescore(contents: list[tuple], args: ComputeOptimalArguments, grader, verifier) -> list[tuple]:
    """The runs re-scored with ``verifier`` (``--prm_path``), as ``recipes/evaluate_pool.py`` does."""
    from eval.rescore import rescore_rows

    rescored = []
    for name, rows, settings in contents:
        rows = rescore_rows(rows, verifier, args.agg_strategy, grader=grader)
        rescored.append((name, rows, {**settings, "verifier": {"prm_path": args.prm_path}}))
    return rescored


def load_rescoring_verifier(args: ComputeOptimalArguments):
    if not args.prm_path:
        return None
    return load_prm(args, args.trust_remote_code)


def compute_optimal_from_args(args: ComputeOptimalArguments) -> dict[str, Any]:
    """Read, (re-score,) grade and analyse the runs; write ``compute_optimal.json`` and ``compute_optimal.png``."""
    counter = count_prompt_tokens if args.count_prompt_tokens else None
    main_contents = read_runs(args.runs, args)
    reference_contents = read_runs(args.reference_runs or [], args)
    verifier = load_rescoring_verifier(args)  # after the runs are checked
    grader = MathGrader(timeout_s=args.grading_timeout_s)
    try:
        if verifier is not None:
            main_contents = rescore(main_contents, args, grader, verifier)
            reference_contents = rescore(reference_contents, args, grader, verifier)
        runs, compute = make_runs(main_contents, args.policy_params, args.verifier_params, counter)
        references, reference_compute = make_runs(
            reference_contents,
            args.reference_params,
            0.0,  # single-sample and majority use no verifier
            counter,
            references=True,
        )
        result = compute_optimal(
            runs, references, grader, args.num_bins, args.votes, args.agg_strategy, args.bootstrap_samples, args.seed
        )
    finally:
        grader.close()
    result["compute"] = {"runs": compute, "reference_runs": reference_compute}
    result["grading_timeouts"] = grader.timeouts
    write_text(os.path.join(args.output_dir, "compute_optimal.json"), json.dumps(result, indent=2))
    plot_compute_optimal(result, os.path.join(args.output_dir, "compute_optimal.png"))
    logger.info("Compute-optimal analysis in %s", args.output_dir)
    return result


def summary_lines(result: dict[str, Any]) -> list[str]:
    """Per budget N the best single strategy and the compute-optimal one; where references are reached."""
    lines = []
    for row in result["axes"]["n"]["budgets"]:
        best, pred = row["best_single"], row["predicted"]
        lines.append(
            f"N<={row['budget']:g}: best single {best['strategy']} {best['in_sample']['accuracy']:.1f}%; "
            f"compute-optimal (predicted bins, cross-fitted) {pred['cross_fitted']['accuracy']:.1f}% "
            f"{pred['cross_fitted']['ci95']}; per bin: {', '.join(pred['choice_per_bin'])}"
        )
    for ref in result["references"]:
        reach = ref["reached_by"]["compute_optimal_predicted_cross_fitted"]
        where = "never" if reach["flops"] is None else f"at {reach['flops_ratio_to_reference']:.2f}x its FLOPs"
        lines.append(f"{ref['label']} {ref['kind']}: {ref['accuracy']:.1f}%; compute-optimal reaches it {where}")
    return lines
