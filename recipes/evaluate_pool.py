"""Metrics of any candidate pool in the search results layout, optionally re-scored with another verifier.

Launch:

    python recipes/evaluate_pool.py --input OUT/results.jsonl --output_dir OUT/eval

Swap verifiers without regenerating (re-scores every completion, writes OUT/eval/results.jsonl too):

    python recipes/evaluate_pool.py --input OUT/results.jsonl --output_dir OUT/eval --prm_path PRM --agg_strategy min

Writes OUT/eval/metrics.json (naive/weighted/maj/pass accuracy in % for n = 1, 2, 4, ..., N; see eval/pool.py for
the exact conventions) and OUT/eval/scaling.png. Options can also come from a YAML file via ``--config``.
"""

from __future__ import annotations

import logging
import os

from eval.pool import check_pool_row, pool_table, row_location, write_pool_metrics
from eval.pool_config import PoolEvalArguments
from eval.rescore import rescore_rows
from prm.atomic import atomic_write
from prm.data import decode_separator
from prm.grading import MathGrader
from prm.verifiers.arguments import load_prm
from search.results import dumps, read_results

logger = logging.getLogger("evaluate_pool")


def main(script_args: PoolEvalArguments) -> dict:
    path = script_args.input
    if os.path.isdir(path):
        path = os.path.join(path, "results.jsonl")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No results file at {path}")
    rows = read_results(path)
    if not rows:
        raise ValueError(f"No results in {path}")
    for i, row in enumerate(rows):  # before loading any model or writing anything
        check_pool_row(row, row_location(row, i, path), need_scores=not script_args.prm_path)
    grader = MathGrader(timeout_s=script_args.grading_timeout_s)
    try:
        if script_args.prm_path:
            verifier = load_prm(script_args, script_args.trust_remote_code)
            separator = decode_separator(script_args.step_separator)
            rows = rescore_rows(rows, verifier, script_args.agg_strategy, separator, grader, source=path)
            with atomic_write(os.path.join(script_args.output_dir, "results.jsonl")) as f:
                f.writelines(dumps(r) for r in rows)
        metrics = write_pool_metrics(
            rows,
            script_args.output_dir,
            script_args.agg_strategy,
            grader,
            source=path,
            input=script_args.input,
            verifier=script_args.prm_path,
        )
    finally:
        grader.close()
    print(pool_table(metrics))
    print(f"Metrics in {os.path.join(script_args.output_dir, 'metrics.json')}")
    return metrics


if __name__ == "__main__":
    from prm import cli

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cli.run(__file__, main, (PoolEvalArguments,))
