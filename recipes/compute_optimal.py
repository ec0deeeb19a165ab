"""Compute-optimal test-time scaling over finished search runs, and small policy + search vs a larger policy at
equal compute. Nothing is regenerated: the runs' stored completions are graded (and optionally re-scored).

Launch (runs of one policy: any methods and N over the same problems; reference runs of a larger policy):

    python recipes/compute_optimal.py --runs OUT/1b/best_of_n OUT/1b/beam_search_n* OUT/1b/dvts_n* \\
        --reference_runs OUT/3b/best_of_n --output_dir OUT/compute_optimal

Writes OUT/compute_optimal/compute_optimal.json (per budget on the N, generated-token and FLOPs axes: the strategy
chosen per difficulty bin, compute-optimal accuracy cross-fitted and in-sample, every single strategy, 95% bootstrap
intervals, and where each curve reaches the reference policy's single-sample and majority accuracy) and
compute_optimal.png. Options can also come from a YAML file via ``--config``; see eval/compute_optimal/.
"""

from __future__ import annotations

import json
import logging
import os
import sys

# Run as a script, sys.path[0] is recipes/, where recipes/search.py would shadow the `search` package.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from eval.compute_optimal import compute_optimal
from eval.compute_optimal.config import ComputeOptimalArguments
from eval.compute_optimal.loading import make_runs
from eval.plots import plot_compute_optimal
from eval.pool import check_pool_row, row_location
from prm.atomic import write_text
from search.generators.chat import count_prompt_tokens
from search.grading import MathGrader
from search.results import read_run

logger = logging.getLogger("compute_optimal")


def read_runs(directories: list[str], script_args: ComputeOptimalArguments, grader) -> list[tuple]:
    """``(directory, rows, settings)`` of each run, re-scored with ``--prm_path`` when given."""
    contents = [(d, *read_run(d)) for d in directories]
    for directory, rows, _ in contents:  # every run checked before any model is loaded
        path = os.path.join(directory, "results.jsonl") if os.path.isdir(directory) else directory
        for i, row in enumerate(rows):
            check_pool_row(row, row_location(row, i, path), need_scores=not script_args.prm_path)
    if not script_args.prm_path:
        return contents
    from eval.rescore import rescore_rows
    from prm.verifiers import load_verifier

    verifier = load_verifier(
        script_args.prm_path,
        script_args.verifier_type,
        device=script_args.prm_device,
        trust_remote_code=script_args.trust_remote_code,
    )
    rescored = []
    for name, rows, settings in contents:
        rows = rescore_rows(rows, verifier, script_args.agg_strategy, grader=grader)
        settings = {**settings, "verifier": {"prm_path": script_args.prm_path}}
        rescored.append((name, rows, settings))
    return rescored


def main(script_args: ComputeOptimalArguments) -> dict:
    grader = MathGrader(timeout_s=script_args.grading_timeout_s)
    counter = count_prompt_tokens if script_args.count_prompt_tokens else None
    try:
        runs, compute = make_runs(
            read_runs(script_args.runs, script_args, grader),
            script_args.policy_params,
            script_args.verifier_params,
            counter,
        )
        references, reference_compute = make_runs(
            read_runs(script_args.reference_runs or [], script_args, grader),
            script_args.reference_params,
            0.0,  # single-sample and majority use no verifier
            counter,
            references=True,
        )
        result = compute_optimal(
            runs,
            references,
            grader,
            script_args.num_bins,
            script_args.votes,
            script_args.agg_strategy,
            script_args.bootstrap_samples,
            script_args.seed,
        )
    finally:
        grader.close()
    result["compute"] = {"runs": compute, "reference_runs": reference_compute}
    result["grading_timeouts"] = grader.timeouts
    write_text(os.path.join(script_args.output_dir, "compute_optimal.json"), json.dumps(result, indent=2))
    plot_compute_optimal(result, os.path.join(script_args.output_dir, "compute_optimal.png"))
    for row in result["axes"]["n"]["budgets"]:
        best, pred = row["best_single"], row["predicted"]
        print(
            f"N<={row['budget']:g}: best single {best['strategy']} {best['in_sample']['accuracy']:.1f}%; "
            f"compute-optimal (predicted bins, cross-fitted) {pred['cross_fitted']['accuracy']:.1f}% "
            f"{pred['cross_fitted']['ci95']}; per bin: {', '.join(pred['choice_per_bin'])}"
        )
    for ref in result["references"]:
        reach = ref["reached_by"]["compute_optimal_predicted_cross_fitted"]
        where = "never" if reach["flops"] is None else f"at {reach['flops_ratio_to_reference']:.2f}x its FLOPs"
        print(f"{ref['label']} {ref['kind']}: {ref['accuracy']:.1f}%; compute-optimal reaches it {where}")
    print(f"Results in {os.path.join(script_args.output_dir, 'compute_optimal.json')}")
    return result


if __name__ == "__main__":
    from prm import cli

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Unknown or misspelt YAML keys, missing runs, malformed rows: one line naming the file and line.
    cli.run(__file__, main, (ComputeOptimalArguments,))
