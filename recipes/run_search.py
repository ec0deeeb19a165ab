"""Test-time search (Best-of-N, beam search, DVTS) with any PRM over MATH-500 / GSM8K.

Launch:

    python recipes/search.py --config recipes/llama-3.2-1b-instruct/beam_search.yaml --output_dir OUT \\
        [--prm_path P] [--dataset_name D] [--dataset_start 0 --dataset_end 100]

Writes OUT/results.jsonl (one line per problem, appended as batches finish: rerun the same command to resume a
killed run), OUT/search_config.json, then OUT/metrics.json and OUT/scaling.png. Shards of one run are joined with

    python recipes/search.py --merge OUT/shard_* --output_dir OUT/merged --agg_strategy last

(see recipes/slurm/search_array.sh). Any option can come from the YAML file or the command line.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Literal

# Run as a script, sys.path[0] is recipes/, where this very file would shadow the `search` package.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from prm.verifiers.vllm_engine import json_mapping
from search.config import DatasetArguments, SearchConfig
from search.generators import GeneratorArguments, load_generator_from_args

logger = logging.getLogger("search")


@dataclass
class SearchScriptArguments:
    output_dir: str = field(metadata={"help": "Where results.jsonl, metrics.json and scaling.png go."})
    prm_path: str | None = field(default=None, metadata={"help": "PRM checkpoint (local directory or hub name)."})
    verifier_type: Literal["auto", "token-cls", "qwen-prm", "step-tag", "chat-plus-minus"] = field(
        default="auto", metadata={"help": "How to read the PRM; auto detects it from the checkpoint."}
    )
    prm_device: str | None = field(default=None, metadata={"help": "Device of the PRM (default: cuda if available)."})
    prm_dtype: Literal["auto", "float32", "bfloat16", "float16"] = field(
        default="auto", metadata={"help": "PRM weights dtype."}
    )
    prm_trust_remote_code: bool = field(default=False, metadata={"help": "Allow custom PRM code from the hub."})
    verifier_backend: Literal["transformers", "vllm"] = field(
        default="transformers",
        metadata={
            "help": "Where the PRM runs: transformers, or a vLLM pooling engine (token-cls, qwen-prm, step-tag and "
            "chat-plus-minus PRMs; GPU: the `vllm` extra, CPU: the venv of `make env-vllm`)."
        },
    )
    verifier_vllm_kwargs: dict | str | None = field(
        default=None,
        metadata={"help": "verifier_backend vllm: more vllm.LLM arguments (a YAML mapping or a JSON object)."},
    )
    merge: list[str] | None = field(
        default=None, metadata={"help": "Instead of searching: merge these shard output dirs into output_dir."}
    )
    skip_metrics: bool = field(default=False, metadata={"help": "Do not grade and plot at the end."})

    def __post_init__(self):
        self.verifier_vllm_kwargs = json_mapping("verifier_vllm_kwargs", self.verifier_vllm_kwargs)


def main(
    script_args: SearchScriptArguments,
    search_args: SearchConfig,
    data_args: DatasetArguments,
    generator_args: GeneratorArguments,
) -> dict | None:
    from pathlib import Path

    from eval.pool import pool_table
    from eval.tracking import report_search
    from search.results import RESULTS_FILE, merge_results
    from search.runner import load_problems, run_search, write_metrics, write_settings

    if script_args.merge:
        merge_results(script_args.merge, Path(script_args.output_dir) / RESULTS_FILE)
    else:
        if not script_args.prm_path:
            raise ValueError("--prm_path is required")
        from prm.verifiers import load_verifier

        problems = load_problems(data_args)
        verifier = load_verifier(
            script_args.prm_path,
            script_args.verifier_type,
            device=script_args.prm_device,
            dtype=None if script_args.prm_dtype == "auto" else script_args.prm_dtype,
            trust_remote_code=script_args.prm_trust_remote_code,
            backend=script_args.verifier_backend,
            engine_kwargs=script_args.verifier_vllm_kwargs,
        )
        generator = load_generator_from_args(generator_args)
        write_settings(
            script_args.output_dir,
            search=search_args,
            data=data_args,
            generator=generator_args,
            verifier={
                "prm_path": script_args.prm_path,
                "verifier_type": script_args.verifier_type,
                "verifier_backend": script_args.verifier_backend,
            },
        )
        run_search(problems, generator, verifier, search_args, script_args.output_dir)
    if script_args.skip_metrics:
        return None
    metrics = write_metrics(script_args.output_dir, search_args.agg_strategy, title=search_args.method)
    print(pool_table(metrics))
    print(f"Results in {script_args.output_dir}")
    report_search(metrics, script_args.output_dir, search_args.report_to, search_args.run_name)
    return metrics


if __name__ == "__main__":
    from prm import cli

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cli.run(__file__, main, (SearchScriptArguments, SearchConfig, DatasetArguments, GeneratorArguments))
