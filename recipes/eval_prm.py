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
from eval.processbench import distributed_state, format_table, load_processbench, run_processbench
from eval.tracking import report_processbench
from prm.data import decode_separator
from prm.verifiers import load_verifier, resolve_verifier_type

logger = logging.getLogger("eval_prm")


def main(script_args: ProcessBenchArguments, model_args: VerifierArguments) -> dict | None:
    state = distributed_state()
    # The data first: a malformed file fails in seconds, before any model is loaded.
    rows_by_split = load_processbench(
        script_args.splits, script_args.data_dir, script_args.dataset_name, script_args.limit
    )
    verifier_type = resolve_verifier_type(model_args.model_name_or_path, model_args.verifier_type)
    kwargs = _verifier_options(model_args, verifier_type)
    verifier = load_verifier(
        model_args.model_name_or_path,
        verifier_type,
        device=state.device,
        dtype=model_args.dtype,
        trust_remote_code=model_args.trust_remote_code,
        backend=model_args.verifier_backend,
        engine_kwargs=model_args.verifier_vllm_kwargs,
        **kwargs,
    )
    results = run_processbench(
        verifier,
        script_args.output_dir,
        splits=script_args.splits,
        data_dir=script_args.data_dir,
        dataset_name=script_args.dataset_name,
        threshold=script_args.threshold,
        sweep=script_args.sweep,
        sweep_selection=script_args.sweep_selection,
        rows_by_split=rows_by_split,
        limit=script_args.limit,
        settings={
            "model": model_args.model_name_or_path,
            "verifier_type": verifier_type,
            "verifier_backend": model_args.verifier_backend,
            "batch_token_budget": model_args.batch_token_budget,
            "input_layout": model_args.input_layout if verifier_type == "token-cls" else None,
            "max_length": verifier.max_length,
            "problem_step_join": getattr(verifier, "problem_step_join", None),
        },
    )
    if results is not None:
        _print_results(results, script_args)
    report_processbench(results, script_args.output_dir, script_args.report_to, script_args.run_name)
    return results


def _verifier_options(model_args: VerifierArguments, verifier_type: str) -> dict:
    """Keyword arguments of ``load_verifier``; an option that does not apply to this kind of verifier is an error."""
    kwargs = {"batch_token_budget": model_args.batch_token_budget, "max_length": model_args.max_length}
    if model_args.separator is not None:
        if verifier_type not in ("token-cls", "step-tag"):
            raise ValueError(f"--separator does not apply to {verifier_type} verifiers (their format is fixed)")
        kwargs["step_separator"] = decode_separator(model_args.separator)
    if model_args.problem_step_join is not None:
        if verifier_type != "chat-plus-minus":
            raise ValueError(f"--problem_step_join applies to chat-plus-minus verifiers only, not {verifier_type}")
        kwargs["problem_step_join"] = decode_separator(model_args.problem_step_join)
    if model_args.input_layout != "training":
        if verifier_type != "token-cls":
            raise ValueError("--input_layout applies to token-cls verifiers only")
        kwargs["input_layout"] = model_args.input_layout
    return kwargs


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
