"""From run directories' contents (rows + ``search_config.json``) to :class:`Run` objects: labels, parameter counts
and prompt token counts. Reading the files is the caller's (the results layout belongs to :mod:`search`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .compute import count_parameters
from .runs import Run, check_rows

logger = logging.getLogger(__name__)

PromptCounter = Callable[[Sequence[str], dict[str, Any]], Sequence[int]]


def policy_path(settings: dict[str, Any]) -> str | None:
    generator = settings.get("generator") or {}
    return generator.get("generator_model_name_or_path")


def verifier_path(settings: dict[str, Any]) -> str | None:
    return (settings.get("verifier") or {}).get("prm_path")


def resolve_parameters(name: str, what: str, path: str | None, given: float | None) -> tuple[float, str]:
    """The parameter count given by the user, else read from the local checkpoint ``path``."""
    if given is not None:
        return float(given), "given"
    if path is None:
        raise ValueError(f"run {name}: search_config.json names no {what} checkpoint; give {what}_params")
    try:
        count, source = count_parameters(path)
    except ValueError as error:
        raise ValueError(f"run {name}: {what} {error} (set {what}_params)") from None
    return float(count), f"{source} of {path}"


def run_labels(names: Sequence[str], settings: Sequence[dict[str, Any]], methods: Sequence[str]) -> list[str]:
    """Method name, plus the policy's / verifier's folder name when runs differ in them, plus the run's folder
    name when two runs would still share a label."""
    labels = list(methods)
    for path_of in (policy_path, verifier_path):
        paths = [path_of(s) for s in settings]
        if len(set(paths)) > 1:
            labels = [f"{label} [{Path(p).name if p else '?'}]" for label, p in zip(labels, paths)]
    best_of_n = {}
    for i, (label, method) in enumerate(zip(labels, methods)):
        # Best-of-N runs of one label would overlap at every n; tree search runs of one label differ in N.
        if method == "best_of_n":
            best_of_n.setdefault(label, []).append(i)
    for members in best_of_n.values():
        if len(members) > 1:
            for i in members:
                labels[i] = f"{labels[i]} ({Path(names[i]).name})"
    return labels


def make_runs(
    contents: Sequence[tuple[str, list[dict[str, Any]], dict[str, Any]]],
    policy_params: float | Sequence[float] | None = None,
    verifier_params: float | None = None,
    count_prompts: PromptCounter | None = None,
    references: bool = False,
) -> tuple[list[Run], list[dict[str, Any]]]:
    """Runs from ``(directory, rows, settings)``, and what was used for each run's compute (for the JSON).
    ``policy_params``: one count for all runs or one per run; None reads each run's checkpoint. Reference runs are
    labelled by their policy (the folder name of its checkpoint, else of the run)."""
    if policy_params is None or isinstance(policy_params, (int, float)):
        policy_params = [policy_params] * len(contents)
    elif len(policy_params) == 1:
        policy_params = list(policy_params) * len(contents)
    methods = []
    for name, rows, settings in contents:
        check_rows(Run(name, rows))
        method = (settings.get("search") or {}).get("method") or next((r.get("method") for r in rows), None)
        if not method:
            raise ValueError(f"run {name}: neither its rows nor search_config.json name the search method")
        methods.append(method)
    labels = run_labels([c[0] for c in contents], [c[2] for c in contents], methods)
    if references:
        labels = [Path(policy_path(settings) or name).name for name, _, settings in contents]
    runs, compute = [], []
    for (name, rows, settings), method, label, given in zip(contents, methods, labels, policy_params):
        p_params, p_source = resolve_parameters(name, "policy", policy_path(settings), given)
        v_params, v_source = resolve_parameters(name, "verifier", verifier_path(settings), verifier_params)
        prompt, prompt_source = prompt_tokens(name, rows, settings, count_prompts)
        runs.append(Run(name, rows, label, method, p_params, v_params, prompt))
        compute.append(
            {
                "run": name,
                "label": label,
                "policy_params": p_params,
                "policy_params_from": p_source,
                "verifier_params": v_params,
                "verifier_params_from": v_source,
                "prompt_tokens": prompt_source,
            }
        )
    return runs, compute


def prompt_tokens(
    name: str, rows: list[dict[str, Any]], settings: dict[str, Any], count_prompts: PromptCounter | None
) -> tuple[np.ndarray | None, str]:
    """Prompt tokens per row (sorted by index): the rows' own ``prompt_tokens``, else counted by ``count_prompts``
    with the run's tokenizer and system prompt, else none (the FLOPs then leave the prompt out, and say so)."""
    ordered = sorted(rows, key=lambda r: r["index"])
    if all("prompt_tokens" in r for r in ordered):
        return np.array([float(r["prompt_tokens"]) for r in ordered]), "recorded in the rows"
    if count_prompts is None:
        return None, "not counted (left out of FLOPs)"
    try:
        counts = count_prompts([r["problem"] for r in ordered], settings)
    except (OSError, ValueError) as error:
        raise ValueError(f"run {name}: cannot count prompt tokens ({error}); set count_prompt_tokens false") from None
    return np.array(counts, dtype=float), "counted with the policy's tokenizer and chat template"
