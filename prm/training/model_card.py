"""The model card (README.md) written next to a trained PRM and pushed with it."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

logger = logging.getLogger(__name__)

PROCESSBENCH_RESULTS = "processbench_results.json"
_SETTINGS = (
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_length",
    "train_on_last_step_only",
    "padding_free",
    "group_by_length",
    "bf16",
    "seed",
)


def _prmkit_version() -> str:
    import prm

    return getattr(prm, "__version__", "unknown")


def render_model_card(
    *,
    separator: str,
    base_model: str | None = None,
    dataset: str | None = None,
    dataset_splits: str | None = None,
    settings: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    processbench: Any = None,
    lora: bool = False,
    step_likelihood_weight: float | None = None,
) -> str:
    """Markdown text of the card (pure: everything it states is passed in)."""
    front = ["---", "library_name: transformers", "pipeline_tag: token-classification", "tags:"]
    front += ["- prmkit", "- process-reward-model"]
    if base_model:
        front.append(f"base_model: {base_model}")
    if dataset and not os.path.exists(dataset):
        front += ["datasets:", f"- {dataset}"]
    front.append("---")
    lines = [
        *front,
        "",
        "# Process reward model",
        "",
        f"A process reward model trained with prmkit {_prmkit_version()}: a token classifier that scores each step "
        "of a solution with P(step correct) (label 1 = correct, 0 = wrong), read at the last token of the step "
        "and its separator.",
        "",
        f"- Base model: `{base_model or 'unknown'}`" + (" (LoRA, merged)" if lora else ""),
        f"- Training data: `{dataset or 'unknown'}`" + (f" ({dataset_splits})" if dataset_splits else ""),
        f"- Step separator: `{json.dumps(separator)}` (also in config.json as `step_separator`)",
        f"- prmkit version: {_prmkit_version()}",
        "",
        "## Usage",
        "",
        "Format each solution as the prompt followed by every step plus the separator, run the model, and take "
        "softmax(logits)[..., 1] at the last token of each step; `prm.data.tokenize_row` builds exactly this layout.",
    ]
    if step_likelihood_weight is not None:
        lines += [
            "",
            f"This PRM adds {step_likelihood_weight} times its own log-likelihood of each step (the step's tokens and "
            "separator, through its tied input embeddings) to that step's log-odds: score = sigmoid(logit_1 - logit_0 "
            f"+ {step_likelihood_weight} * sum log p(token)). prmkit's `TokenClassificationVerifier` does this (the "
            "weight is in config.json as `prm_step_likelihood_weight`); a reader of the classifier alone gets other "
            "scores.",
        ]
    if settings:
        lines += ["", "## Training settings", "", "| setting | value |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in settings.items()]
    if metrics:
        lines += ["", "## Evaluation (held-out steps)", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()]
    if processbench is not None:
        lines += ["", "## ProcessBench", "", "```json", json.dumps(processbench, indent=2), "```"]
    return "\n".join(lines) + "\n"


def write_model_card(
    output_dir: str,
    *,
    args=None,
    model_name: str | None = None,
    metrics: dict[str, float] | None = None,
    base_model: str | None = None,
    dataset: str | None = None,
    dataset_splits: str | None = None,
    lora: bool = False,
) -> str:
    """Write ``<output_dir>/README.md``; includes ``processbench_results.json`` from the same dir if present."""
    processbench = None
    results_file = os.path.join(output_dir, PROCESSBENCH_RESULTS)
    if os.path.isfile(results_file):
        with open(results_file, encoding="utf-8") as f:
            processbench = json.load(f)
    settings = {k: getattr(args, k) for k in _SETTINGS if args is not None and hasattr(args, k)}
    text = render_model_card(
        separator=args.separator if args is not None else "\n",
        base_model=base_model,
        dataset=dataset,
        dataset_splits=dataset_splits,
        settings=settings,
        metrics=metrics,
        processbench=processbench,
        lora=lora,
        step_likelihood_weight=getattr(args, "step_likelihood_weight", None),
    )
    if model_name:
        text = text.replace("# Process reward model", f"# {model_name}", 1)
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, "README.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    logger.info("Wrote model card %s", path)
    return path
