"""Experiment tracking of evaluation and search results in Weights & Biases (off unless ``report_to="wandb"``).

Training reports through transformers' own ``WandbCallback`` (``--report_to wandb`` of ``TrainingArguments``);
this module does the same for what the Trainer does not see: ProcessBench results (``recipes/eval_prm.py`` and
the ProcessBench callback at the end of training) and search results (``recipes/run_search.py``). Each result is
logged as scalars (also in the run's summary), a table and the plot the recipe wrote, so a run reads in the W&B
UI as the JSON files read on disk. ``WANDB_PROJECT``, ``WANDB_ENTITY``, ``WANDB_MODE=offline`` etc. work as usual.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Literal

logger = logging.getLogger(__name__)

ReportTo = Literal["none", "wandb"]
REPORT_TO: tuple[str, ...] = ("none", "wandb")
REPORT_TO_HELP = (
    "Where to log the results besides the output files: 'none' or 'wandb' (Weights & Biases; a table of the "
    "results, the plot and the headline numbers; WANDB_PROJECT, WANDB_MODE=offline etc. apply)."
)
RUN_NAME_HELP = "Name of the W&B run (default: W&B picks one)."

PROCESSBENCH_COLUMNS = ("split", "error_acc", "correct_acc", "f1", "num_erroneous", "num_correct")
POOL_METRICS = ("naive", "weighted", "maj", "pass")


def _wandb():
    try:
        import wandb
    except ImportError as error:
        raise ImportError("report_to='wandb' needs the wandb package: pip install 'prmkit[wandb]'") from error
    return wandb


def start_run(run_name: str | None, job_type: str, config: dict[str, Any] | None = None):
    """A new W&B run for one evaluation or search (finish it with ``run.finish()``). Scalars logged into it are
    also its summary, the numbers a list of runs shows."""
    return _wandb().init(name=run_name, job_type=job_type, config=config or {})


def processbench_payload(results: dict[str, Any], plot_path: str | None = None) -> dict[str, Any]:
    """What a ProcessBench result logs: per-split and average F1 as scalars, the per-split table, the F1 sweep
    (a table, threshold x split) and its plot when the evaluation ran ``--sweep``."""
    wandb = _wandb()
    splits = [s for s in results["settings"]["splits"] if s in results]
    payload: dict[str, Any] = {f"processbench/{s}_f1": results[s]["f1"] for s in splits}
    payload["processbench/average_f1"] = results["average_f1"]
    if "weighted_f1" in results:
        payload["processbench/weighted_f1"] = results["weighted_f1"]
    payload["processbench/results"] = wandb.Table(
        columns=list(PROCESSBENCH_COLUMNS),
        data=[[s, *(results[s][c] for c in PROCESSBENCH_COLUMNS[1:])] for s in splits],
    )
    sweep = results.get("sweep")
    if sweep:
        thresholds = list(next(iter(sweep.values())))
        payload["processbench/f1_vs_threshold"] = wandb.Table(
            columns=["threshold", *sweep], data=[[float(t), *(sweep[s][t] for s in sweep)] for t in thresholds]
        )
        chosen = results.get("threshold_selection") or {}
        if chosen.get("average_f1") is not None:
            payload["processbench/tuned_average_f1"] = chosen["average_f1"]
    if plot_path and os.path.isfile(plot_path):
        payload["processbench/f1_vs_threshold_plot"] = wandb.Image(plot_path)
    return payload


def search_payload(metrics: dict[str, Any], plot_path: str | None = None) -> dict[str, Any]:
    """What a search result logs: accuracy at the largest budget per metric as scalars, every (metric, n,
    accuracy) in a table, the mean token counts, and the scaling plot."""
    wandb = _wandb()
    rows = [[m, int(n), acc] for m in POOL_METRICS for n, acc in (metrics.get(m) or {}).items()]
    payload: dict[str, Any] = {"search/accuracy": wandb.Table(columns=["metric", "n", "accuracy"], data=rows)}
    for m in POOL_METRICS:
        if metrics.get(m):
            largest = max(metrics[m], key=int)
            payload[f"search/{m}@{int(largest)}"] = metrics[m][largest]
    for key in ("mean_generated_tokens_per_problem", "mean_verifier_tokens_per_problem"):
        if key in metrics:
            payload[f"search/{key}"] = metrics[key]
    if plot_path and os.path.isfile(plot_path):
        payload["search/scaling_plot"] = wandb.Image(plot_path)
    return payload


def report_processbench(
    results: dict[str, Any] | None, output_dir: str, report_to: ReportTo, run_name: str | None = None
) -> None:
    """Log ``recipes/eval_prm.py``'s results (None on non-main processes: nothing to do) in a new run."""
    if report_to == "none" or results is None:
        return
    run = start_run(run_name, "processbench", config=results.get("settings"))
    try:
        run.log(processbench_payload(results, os.path.join(output_dir, "processbench", "f1_vs_threshold.png")))
    finally:
        run.finish()
    logger.info("ProcessBench results logged to W&B run %s", run.id)


def report_search(metrics: dict[str, Any], output_dir: str, report_to: ReportTo, run_name: str | None = None) -> None:
    """Log a search run's ``metrics.json`` and ``scaling.png`` in a new run, its ``search_config.json`` (the
    run's settings) as the run's config."""
    if report_to == "none":
        return
    settings_path = os.path.join(output_dir, "search_config.json")
    config = None
    if os.path.isfile(settings_path):
        with open(settings_path, encoding="utf-8") as f:
            config = json.load(f)
    run = start_run(run_name, "search", config=config)
    try:
        run.log(search_payload(metrics, os.path.join(output_dir, "scaling.png")))
    finally:
        run.finish()
    logger.info("Search results logged to W&B run %s", run.id)
