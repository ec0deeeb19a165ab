"""ProcessBench during training: evaluate the model being trained at the end (and optionally at each evaluation)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import Any

from transformers import TrainerCallback

from eval.processbench import DEFAULT_DATASET, SPLITS, run_processbench
from prm.atomic import write_text
from prm.verifiers.batching import DEFAULT_TOKEN_BUDGET

logger = logging.getLogger(__name__)

RESULTS_FILE = "processbench_results.json"


class ProcessBenchCallback(TrainerCallback):
    """Runs ProcessBench on (a subset of) the splits with the in-memory model, the same code as ``eval_prm.py``.

    Results go to ``<output_dir>/processbench_results.json`` (read by the model card) and to the trainer's log
    history as ``processbench/<split>_f1`` and ``processbench/average_f1`` (with ``report_to`` including wandb,
    also to the Trainer's W&B run, with the per-split table); with ``on_evaluate=True`` they are
    also added to the metrics returned by ``trainer.evaluate()`` as ``eval_processbench_*``.
    """

    def __init__(
        self,
        data_dir: str | None = None,
        splits: Sequence[str] = SPLITS,
        limit: int | None = None,
        threshold: float | None = None,
        on_evaluate: bool = False,
        dataset_name: str = DEFAULT_DATASET,
        step_separator: str | None = None,
        batch_token_budget: int = DEFAULT_TOKEN_BUDGET,
    ):
        if data_dir is not None and not os.path.isdir(data_dir):
            raise FileNotFoundError(f"ProcessBench data_dir {data_dir} is not a directory")
        unknown = [s for s in splits if s not in SPLITS]
        if unknown:
            raise ValueError(f"Unknown ProcessBench splits {unknown}; choose from {', '.join(SPLITS)}")
        self.data_dir = data_dir
        self.splits = list(splits)
        self.limit = limit
        self.threshold = threshold
        self.evaluate_during_training = on_evaluate
        self.dataset_name = dataset_name
        self.step_separator = step_separator
        self.batch_token_budget = batch_token_budget
        self.results: dict[str, Any] | None = None

    def _run(self, args, state, model, tokenizer) -> dict[str, float]:
        from prm.verifiers import TokenClassificationVerifier

        if model is None or tokenizer is None:
            logger.warning("ProcessBenchCallback: the trainer passed no model or tokenizer; skipping")
            return {}
        verifier = TokenClassificationVerifier.from_model(
            model, tokenizer, self.step_separator, batch_token_budget=self.batch_token_budget
        )
        results = run_processbench(
            verifier,
            output_dir=None,
            splits=self.splits,
            data_dir=self.data_dir,
            dataset_name=self.dataset_name,
            threshold=self.threshold,
            limit=self.limit,
            settings={"global_step": state.global_step},
        )
        if results is None:  # not the main process
            return {}
        self.results = results
        metrics = {f"processbench/{s}_f1": results[s]["f1"] for s in self.splits}
        metrics["processbench/average_f1"] = results["average_f1"]
        state.log_history.append({**metrics, "step": state.global_step})
        if "wandb" in (args.report_to or []):
            _log_to_active_wandb_run(results, state.global_step)
        logger.info("ProcessBench at step %d: %s", state.global_step, json.dumps(metrics))
        os.makedirs(args.output_dir, exist_ok=True)
        write_text(os.path.join(args.output_dir, RESULTS_FILE), json.dumps(results, indent=2))
        return metrics

    def on_train_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        self._run(args, state, model, processing_class)

    def on_evaluate(self, args, state, control, metrics=None, model=None, processing_class=None, **kwargs):
        if not self.evaluate_during_training:
            return
        found = self._run(args, state, model, processing_class)
        if metrics is not None:
            metrics.update({"eval_" + k.replace("/", "_"): v for k, v in found.items()})


def _log_to_active_wandb_run(results: dict[str, Any], global_step: int) -> None:
    """The Trainer's W&B run (opened by transformers' WandbCallback) gets the results, table included, at the
    training step they belong to; the callback's own log entries never pass through the Trainer's loggers."""
    import wandb

    from eval.tracking import processbench_payload

    if wandb.run is None:
        logger.warning("report_to includes wandb but no W&B run is active; ProcessBench results not logged there")
        return
    wandb.run.log({**processbench_payload(results), "train/global_step": global_step})


def training_callbacks(script_args) -> list[TrainerCallback]:
    """The callbacks that ``recipes/train_prm.py`` settings ask for: ProcessBench when ``processbench_dir`` is set."""
    from prm.training.pipeline import given

    if not given(script_args.processbench_dir):
        return []
    return [ProcessBenchCallback(data_dir=script_args.processbench_dir, limit=script_args.processbench_eval_limit)]
