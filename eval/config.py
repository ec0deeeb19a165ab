"""Arguments of ``recipes/eval_prm.py`` (parsed by ``trl.TrlParser``: YAML via ``--config`` + CLI overrides)."""

from __future__ import annotations

from dataclasses import dataclass, field

from eval.processbench import DEFAULT_DATASET, SPLITS
from eval.tracking import REPORT_TO, REPORT_TO_HELP, RUN_NAME_HELP, ReportTo
from prm.verifiers.arguments import VerifierBackendArguments
from prm.verifiers.batching import DEFAULT_TOKEN_BUDGET
from prm.verifiers.loading import VerifierType
from prm.verifiers.models import DTypeName
from prm.verifiers.token_cls import InputLayout


@dataclass
class ProcessBenchArguments:
    output_dir: str = field(metadata={"help": "Where processbench/<split>.jsonl and processbench/results.json go."})
    data_dir: str | None = field(
        default=None,
        metadata={"help": "Local directory with <split>.json files (the ProcessBench layout); default: the hub."},
    )
    dataset_name: str = field(default=DEFAULT_DATASET, metadata={"help": "Hub dataset used when --data_dir is unset."})
    splits: list[str] = field(default_factory=lambda: list(SPLITS), metadata={"help": f"Splits among {SPLITS}."})
    threshold: float | None = field(
        default=None,
        metadata={
            "help": "Judge a step wrong when P(correct) < threshold (Qwen2.5-Math-PRM protocol: 0.5). Default: the "
            "argmax of the two classes, as the benchmark's script does for TRL-trained PRMs."
        },
    )
    sweep: bool = field(
        default=False,
        metadata={
            "help": "Also compute F1 for thresholds 0.05..0.95, plot it and choose a threshold (--sweep_selection)."
        },
    )
    sweep_selection: str = field(
        default="gsm8k",
        metadata={
            "help": "How --sweep chooses its threshold: a split to tune on (default gsm8k, as the benchmark's authors "
            "did; the other splits are held out) or 'cross-fit' (each split at the threshold best on the others)."
        },
    )
    limit: int | None = field(default=None, metadata={"help": "Evaluate only the first N solutions of each split."})
    report_to: ReportTo = field(default="none", metadata={"help": REPORT_TO_HELP})
    run_name: str | None = field(default=None, metadata={"help": RUN_NAME_HELP})

    def __post_init__(self):
        unknown = [s for s in self.splits if s not in SPLITS]
        if unknown and self.data_dir is None:  # local data may hold other splits in ProcessBench's layout
            raise ValueError(f"Unknown splits {unknown}; choose from {', '.join(SPLITS)}")
        if not self.splits:
            raise ValueError("--splits needs at least one split")
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ValueError(f"--threshold must be in (0, 1), got {self.threshold}")
        if self.sweep and self.sweep_selection != "cross-fit" and self.sweep_selection not in self.splits:
            raise ValueError(
                f"--sweep_selection {self.sweep_selection} is not among --splits {self.splits}: add it, or use "
                "--sweep_selection cross-fit"
            )
        if self.sweep and self.sweep_selection == "cross-fit" and len(self.splits) < 2:
            raise ValueError("--sweep_selection cross-fit needs at least two --splits")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be positive, got {self.limit}")
        if self.report_to not in REPORT_TO:
            raise ValueError(f"--report_to must be one of {REPORT_TO}, got {self.report_to!r}")


@dataclass
class VerifierArguments(VerifierBackendArguments):
    model_name_or_path: str = field(metadata={"help": "PRM checkpoint: a local directory or a hub name."})
    verifier_type: VerifierType = field(
        default="auto", metadata={"help": "PRM style; auto-detected from the config where that is unambiguous."}
    )
    separator: str | None = field(
        default=None,
        metadata={
            "help": "Step separator (token-cls and step-tag PRMs). Typed on a shell, '\\n' (backslash-n) means a "
            "newline. Default: the separator saved in the model's config.json, else '\\n'."
        },
    )
    problem_step_join: str | None = field(
        default=None,
        metadata={
            "help": "chat-plus-minus (RLHFlow) only: what joins the problem and the first step in the first user "
            "turn. Default: one space, the model authors' own usage; '\\n\\n' reproduces ProcessBench's script "
            "(shell escapes decoded)."
        },
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow the checkpoint's own Python code to run (off by default)."}
    )
    batch_token_budget: int = field(
        default=DEFAULT_TOKEN_BUDGET,
        metadata={"help": "Max tokens per batch (rows x longest row); batches are formed by length."},
    )
    max_length: int | None = field(
        default=None,
        metadata={
            "help": "Context limit in tokens; longer solutions are scored on the steps that fit. "
            "Default: the model's max_position_embeddings."
        },
    )
    input_layout: InputLayout = field(
        default="training",
        metadata={
            "help": "token-cls only. 'training': the input layout the PRM was trained with (prm.data, as TRL). "
            "'processbench-script': the input of ProcessBench's own script for TRL PRMs in its fixed revision "
            "(QwenLM/ProcessBench PR #12, commit 05769fa): the training layout without the BOS token."
        },
    )
    dtype: DTypeName | None = field(
        default=None, metadata={"help": "Weights dtype; default bfloat16 on GPU, float32 on CPU."}
    )

    def __post_init__(self):
        super().__post_init__()
        if self.batch_token_budget < 1:
            raise ValueError(f"--batch_token_budget must be positive, got {self.batch_token_budget}")
        if self.max_length is not None and self.max_length < 2:
            raise ValueError(f"--max_length must be at least 2, got {self.max_length}")
        if self.problem_step_join is not None and self.verifier_type not in ("auto", "chat-plus-minus"):
            raise ValueError(
                f"--problem_step_join applies to chat-plus-minus verifiers only, not {self.verifier_type}"
            )
        if self.separator is not None and self.verifier_type in ("qwen-prm", "chat-plus-minus"):
            raise ValueError(f"--separator does not apply to {self.verifier_type} verifiers (their format is fixed)")
