"""Training settings: the stepwise data settings plus the PRM-specific training extras."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from prm.data import DEFAULT_SEPARATOR, decode_separator


@dataclass
class PRMConfig(TrainingArguments):
    """``transformers.TrainingArguments`` plus the data and batching settings of a process reward model."""

    step_separator: str = field(
        default=DEFAULT_SEPARATOR,
        metadata={
            "help": "Text appended after every step; the step's label sits on its last token. Escapes typed on a "
            "shell are decoded: '\\n' (backslash, n) means a newline and '\\n\\n' two newlines. Saved into the "
            "model's config.json as `step_separator`."
        },
    )
    max_length: int | None = field(
        default=1024,
        metadata={
            "help": "Maximum tokens per example. Whole trailing steps that do not fit are dropped with their labels; "
            "rows whose prompt and first step do not fit are skipped. Both are counted and logged. None: no limit."
        },
    )
    train_on_last_step_only: bool = field(
        default=False,
        metadata={"help": "Keep only the label of each solution's last step (outcome-style supervision)."},
    )
    dataset_num_proc: int | None = field(
        default=None, metadata={"help": "Processes used to convert and tokenize the dataset (None: in process)."}
    )
    neutral_label: float = field(
        default=1.0,
        metadata={
            "help": "Label of PRM800K steps rated 0 (neutral): 1.0 counts them as correct (the default: they are not "
            "errors), 0.0 as wrong, a value in between trains them as soft labels. Used for the prm800k layout only."
        },
    )
    padding_free: bool = field(
        default=False,
        metadata={
            "help": "Concatenate each training batch into one row with restarting position_ids and no padding "
            "(same loss as padded batches). Needs an attention implementation that isolates packed sequences (sdpa, "
            "eager, flash_attention_2/3, flex_attention on models using transformers' mask utilities); others are "
            "refused. It pays off with flash-attention's varlen kernels; with sdpa/eager the block-diagonal mask "
            "spans the whole packed row, which is slower than length-grouped padding (measured on CPU)."
        },
    )
    group_by_length: bool = field(
        default=True,
        metadata={
            "help": "Batch examples of similar length together to cut padding (training sampler only; on by "
            "default). Each epoch the examples are shuffled with seed + epoch, cut into mega-batches of (at most) 50 "
            "batches, and each mega-batch is sorted by length and cut into batches; then the batches are shuffled, "
            "except the first, which holds the longest example, and a short last one. Batches thus hold examples "
            "of similar length, in random order. False: a plain random order, the same batches as TRL's "
            "PRMTrainer for the same seed."
        },
    )
    merge_lora_on_save: bool = field(
        default=True,
        metadata={
            "help": "With LoRA, merge the adapters into the base weights when saving the final model so the output "
            "loads as a plain AutoModelForTokenClassification. Checkpoints keep the adapters for resuming."
        },
    )
    step_likelihood_weight: float | None = field(
        default=None,
        metadata={
            "help": "Add this weight times the model's own log-likelihood of each step (its tokens and separator) "
            "to the step's logit, read through the tied input embeddings (prm.step_likelihood): the PRM keeps its "
            "language-model head, so a step the model would not have written scores lower from the first training "
            "step. Needs tie_word_embeddings; not with DeepSpeed ZeRO-3. Recorded in the saved config, so every "
            "transformers verifier scores the same way (the vLLM backend refuses such a model). None: a plain token "
            "classifier, loadable by TRL's former PRMTrainer tooling."
        },
    )
    disable_dropout: bool = field(
        default=True, metadata={"help": "Turn off dropout in the model (as TRL's PRMTrainer did by default)."}
    )
    remove_unused_columns: bool = field(
        default=False,
        metadata={"help": "Kept False: the PRM collator picks `input_ids` and `labels` itself."},
    )

    @property
    def separator(self) -> str:
        """``step_separator`` with shell-typed escapes decoded (what tokenization and the saved config use)."""
        return decode_separator(self.step_separator)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_length is not None and self.max_length < 2:
            raise ValueError(f"max_length must be at least 2 (or None), got {self.max_length}")
        if not self.step_separator:
            raise ValueError("step_separator must not be empty: the step labels sit on its last token")
        if self.step_likelihood_weight is not None and self.step_likelihood_weight <= 0:
            raise ValueError(f"step_likelihood_weight must be positive (or None), got {self.step_likelihood_weight}")
        if not 0.0 <= self.neutral_label <= 1.0:
            raise ValueError(f"neutral_label must be in [0, 1], got {self.neutral_label}")
        if self.group_by_length and self.train_sampling_strategy not in ("random", "group_by_length"):
            raise ValueError(
                f"group_by_length=True (the default) conflicts with train_sampling_strategy="
                f"{self.train_sampling_strategy!r}: set group_by_length=False to use that sampler"
            )
