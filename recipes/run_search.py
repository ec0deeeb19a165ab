"""Test-time search (Best-of-N, beam search, DVTS) with any PRM over MATH-500 / GSM8K.

Launch:

    python recipes/run_search.py --config recipes/llama-3.2-1b-instruct/beam_search.yaml --output_dir OUT \\
        [--prm_path P] [--dataset_name D] [--dataset_start 0 --dataset_end 100]

Writes OUT/results.jsonl (one line per problem, appended as batches finish: rerun the same command to resume a
killed run), OUT/search_config.json, then OUT/metrics.json and OUT/scaling.png. Shards of one run are joined with

    python recipes/run_search.py --merge OUT/shard_* --output_dir OUT/merged --agg_strategy last

(see recipes/slurm/search_array.sh). Any option can come from the YAML file or the command line.
"""

from __future__ import annotations

import logging

from eval.pool import pool_table
from search.config import DatasetArguments, SearchConfig, SearchScriptArguments
from search.generators import GeneratorArguments
from search.runner import search_from_args


def main(
    script_args: SearchScriptArguments,
    search_args: SearchConfig,
    data_args: DatasetArguments,
    generator_args: GeneratorArguments,
) -> dict | None:
    metrics = search_from_args(script_args, search_args, data_args, generator_args)
    if metrics is None:
        return None
    print(pool_table(metrics))
    print(f"Results in {script_args.output_dir}")
    return metrics


if __name__ == "__main__":
    from prm import cli

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cli.run(__file__, main, (SearchScriptArguments, SearchConfig, DatasetArguments, GeneratorArguments))
