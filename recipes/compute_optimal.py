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

import logging
import os

from eval.compute_optimal.config import ComputeOptimalArguments
from search.compute_optimal import compute_optimal_from_args, summary_lines

logger = logging.getLogger("compute_optimal")


def main(script_args: ComputeOptimalArguments) -> dict:
    result = compute_optimal_from_args(script_args)
    print("\n".join(summary_lines(result)))
    print(f"Results in {os.path.join(script_args.output_dir, 'compute_optimal.json')}")
    return result


if __name__ == "__main__":
    from prm import cli

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Unknown or misspelt YAML keys, missing runs, malformed rows: one line naming the file and line.
    cli.run(__file__, main, (ComputeOptimalArguments,))
