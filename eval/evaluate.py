"""Evaluate a PRM checkpoint on ProcessBench from parsed settings: what ``recipes/eval_prm.py`` (and the demo) run."""

from __future__ import annotations

from typing import Any

from eval.processbench import distributed_state, load_processbench, run_processbench


def evaluate_from_args(script_args, model_args, verifier=None) -> dict[str, Any] | None:
    """Load the verifier that ``model_args`` (``eval.config.VerifierArguments``) describes, run ProcessBench with
    ``script_args`` (``eval.config.ProcessBenchArguments``) and report to W&B when asked, as ``recipes/eval_prm.py``
    does; None off the main process. ``verifier``, when given, is used instead of loading one (a caller that also
    searches with the PRM builds its engine once: :func:`load_eval_verifier`)."""
    from eval.tracking import report_processbench
    from prm.verifiers import resolve_verifier_type

    state = distributed_state()
    # The data first: a malformed file fails in seconds, before any model is loaded.
    rows_by_split = load_processbench(
        script_args.splits, script_args.data_dir, script_args.dataset_name, script_args.limit
    )
    verifier_type = resolve_verifier_type(model_args.model_name_or_path, model_args.verifier_type)
    if verifier is None:
        verifier = load_eval_verifier(model_args, device=state.device, verifier_type=verifier_type)
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
    report_processbench(results, script_args.output_dir, script_args.report_to, script_args.run_name)
    return results


def load_eval_verifier(model_args, device=None, verifier_type: str | None = None):
    """The verifier ``model_args`` (``eval.config.VerifierArguments``) describes, on ``device``; ``verifier_type``:
    the type already resolved from the checkpoint (resolved here when None)."""
    from prm.verifiers import load_verifier, resolve_verifier_type

    if verifier_type is None:
        verifier_type = resolve_verifier_type(model_args.model_name_or_path, model_args.verifier_type)
    return load_verifier(
        model_args.model_name_or_path,
        verifier_type,
        device=device,
        dtype=model_args.dtype,
        trust_remote_code=model_args.trust_remote_code,
        backend=model_args.verifier_backend,
        engine_kwargs=model_args.verifier_vllm_kwargs,
        **verifier_options(model_args, verifier_type),
    )


def verifier_options(model_args, verifier_type: str) -> dict[str, Any]:
    """Keyword arguments of ``load_verifier``; an option that does not apply to this kind of verifier is an error."""
    from prm.data import decode_separator

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
