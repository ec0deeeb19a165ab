"""Evaluate a process reward model on ProcessBench.

Launch (one device; data from the hub, Qwen/ProcessBench):

    python recipes/eval_prm.py --model_name_or_path CKPT --output_dir OUT

A local directory of the split files (here the slices shipped in data/processbench), chosen splits, Qwen2.5-Math-PRM
protocol, threshold sweep:

    python recipes/eval_prm.py --model_name_or_path CKPT --output_dir OUT --data_dir data/processbench \\
        --splits gsm8k math --threshold 0.5 --sweep [--sweep_selection cross-fit]

Several GPUs (each process scores a share, the main process gathers and writes):

    accelerate launch --num_processes 8 recipes/eval_prm.py --model_name_or_path CKPT --output_dir OUT

Several CPU processes (gloo; ``--cpu --num_processes 2`` would start only one):

    accelerate launch --config_file accelerate_configs/ddp.yaml --num_processes 2 recipes/eval_prm.py ...

Writes OUT/processbench/<split>.jsonl (id, label, prediction, step_scores, truncated per solution) and
OUT/processbench/results.json (per-split error_acc / correct_acc / f1, average_f1, weighted_f1, settings), and
prints a table. ``--separator '\\n\\n'`` (backslash-n as typed on a shell) means two newlines; by default the
separator saved in the model's config.json is used. Any option can also come from a YAML file via ``--config``.
"""

from __future__ import annotations

import logging
import os

from eval.config import ProcessBenchArguments, VerifierArguments
from eval.evaluate import evaluate_from_args
from eval.processbench import format_table

logger = logging.getLogger("eval_prm")


def main(script_args: ProcessBenchArguments, model_args: VerifierArguments) -> dict | None:
    results = evaluate_from_args(script_args, model_args)
    if results is not None:
        _print_results(results, script_args)
    return results


def _print_results(results: dict, script_args: ProcessBenchArguments) -> None:
    print(format_table(results))
    if script_args.sweep:
        chosen = results["threshold_selection"]
        print(f"threshold {chosen['rule']}")
        print("  " + ", ".join(f"{s} {t:.2f}: F1 {chosen['f1'][s]:.1f}" for s, t in chosen["thresholds"].items()))
        held_out = chosen["average_f1_held_out"]
        print(f"  average F1 {chosen['average_f1']:.1f}" + (f", held-out splits {held_out:.1f}" if held_out else ""))
    print(f"Results in {os.path.join(script_args.output_dir, 'processbench')}")


if __name__ == "__main__":
    from prm import cli

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cli.run(__file__, main, (ProcessBenchArguments, VerifierArguments))
