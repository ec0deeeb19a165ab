"""What to search: method, budget and scoring settings shared by Best-of-N, beam search and DVTS."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from eval.tracking import REPORT_TO, REPORT_TO_HELP, RUN_NAME_HELP, ReportTo
from prm.data.separator import decode_separator
from prm.grading import AnswerFormat
from prm.verifiers.aggregation import AGG_STRATEGIES, AggStrategy
from prm.verifiers.arguments import PRMPathArguments

SearchMethod = Literal["best_of_n", "beam_search", "dvts"]

DEFAULT_SYSTEM_PROMPT = (
    "Solve the following math problem efficiently and clearly. Think step by step, separating steps with a blank "
    "line. Always conclude with: Therefore, the final answer is: $\\boxed{answer}$. Where [answer] is just the "
    "final number or expression that solves the problem."
)


@dataclass
class SearchConfig:
    """Settings of one search run. ``n`` is the final pool size per problem for every method."""

    method: SearchMethod = field(
        default="best_of_n", metadata={"help": "Search method: best_of_n, beam_search or dvts."}
    )
    n: int = field(default=4, metadata={"help": "Number of solutions in each problem's final pool (N)."})
    beam_width: int = field(
        default=4,
        metadata={
            "help": "M: beam search keeps N/M beams and expands each M ways; DVTS runs N/M subtrees that each "
            "expand M candidates per iteration. Must divide n."
        },
    )
    num_iterations: int = field(
        default=40,
        metadata={"help": "Maximum number of steps of beam search / DVTS; the last iteration generates to the end."},
    )
    lookahead: int = field(
        default=0,
        metadata={
            "help": "Extra greedy steps generated after each candidate step and scored (not kept) to rank it "
            "(beam search and DVTS)."
        },
    )
    filter_duplicates: bool = field(
        default=False, metadata={"help": "Beam search: drop candidate beams whose text duplicates another beam's."}
    )
    agg_strategy: AggStrategy = field(
        default="last",
        metadata={"help": "How a solution's step scores become one score, used for every ranking and vote."},
    )
    temperature: float = field(default=0.8, metadata={"help": "Sampling temperature."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling threshold."})
    max_tokens: int = field(
        default=2048, metadata={"help": "Token budget of one whole solution, for every method (not hard-coded)."}
    )
    max_step_tokens: int = field(
        default=512, metadata={"help": "Token limit of one step in beam search / DVTS (a longer step is cut)."}
    )
    step_separator: str = field(
        default="\n\n",
        metadata={
            "help": "What ends a generated step (a stop string for the generator); shell escapes such as \\n\\n "
            "are decoded. The verifier joins steps with its own separator."
        },
    )
    seed: int = field(default=42, metadata={"help": "Base seed; each batch's seeds derive from it and the indices."})
    system_prompt: str | None = field(
        default=DEFAULT_SYSTEM_PROMPT, metadata={"help": "System prompt passed to the generator's chat template."}
    )
    search_batch_size: int = field(
        default=8,
        metadata={
            "help": "Problems searched together (one generator call per iteration for all of them). Batches are "
            "aligned to absolute dataset indices, so shards whose bounds are multiples of it give the same samples "
            "as one unsharded run."
        },
    )
    prefix_cache: bool = field(
        default=True,
        metadata={
            "help": "Beam search / DVTS: keep the verifier's KV cache per beam and score only new steps (token "
            "classification PRMs only; other verifiers re-score whole prefixes)."
        },
    )
    report_to: ReportTo = field(default="none", metadata={"help": REPORT_TO_HELP})
    run_name: str | None = field(default=None, metadata={"help": RUN_NAME_HELP})

    def __post_init__(self):
        self.step_separator = decode_separator(self.step_separator)
        if self.report_to not in REPORT_TO:
            raise ValueError(f"report_to must be one of {REPORT_TO}, got {self.report_to!r}")
        if self.n < 1:
            raise ValueError(f"n must be at least 1, got {self.n}")
        if self.beam_width < 1 or self.n % self.beam_width:
            raise ValueError(f"n ({self.n}) must be a positive multiple of beam_width ({self.beam_width})")
        if self.agg_strategy not in AGG_STRATEGIES:
            raise ValueError(f"agg_strategy must be one of {AGG_STRATEGIES}, got {self.agg_strategy!r}")
        if self.method not in ("best_of_n", "beam_search", "dvts"):
            raise ValueError(f"method must be best_of_n, beam_search or dvts, got {self.method!r}")
        for name in ("num_iterations", "max_tokens", "max_step_tokens", "search_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lookahead < 0:
            raise ValueError(f"lookahead must be >= 0, got {self.lookahead}")
        if not self.step_separator:
            raise ValueError("step_separator must not be empty")


@dataclass
class DatasetArguments:
    """Which problems to search, and how to read their columns."""

    dataset_name: str = field(
        default="HuggingFaceH4/MATH-500",
        metadata={
            "help": "Hub dataset (HuggingFaceH4/MATH-500, openai/gsm8k) or a local .jsonl/.json file or folder."
        },
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Dataset configuration (gsm8k: main)."})
    dataset_split: str = field(default="test", metadata={"help": "Split to search."})
    dataset_start: int | None = field(
        default=None, metadata={"help": "First row (inclusive) of this shard; indices stay those of the full dataset."}
    )
    dataset_end: int | None = field(default=None, metadata={"help": "Last row (exclusive) of this shard."})
    problem_column: str | None = field(
        default=None, metadata={"help": "Column holding the problem; default: 'problem', else 'question'."}
    )
    answer_column: str = field(default="answer", metadata={"help": "Column holding the gold answer."})
    answer_format: AnswerFormat = field(
        default="auto",
        metadata={
            "help": "plain: the column is the answer; gsm8k: the answer follows '####' in a worked solution; "
            "auto: gsm8k when the text contains '####'."
        },
    )

    def __post_init__(self):
        if self.dataset_start is not None and self.dataset_start < 0:
            raise ValueError(f"dataset_start must be >= 0, got {self.dataset_start}")
        if self.dataset_start is not None and self.dataset_end is not None and self.dataset_end <= self.dataset_start:
            raise ValueError(
                f"dataset_end ({self.dataset_end}) must be greater than dataset_start ({self.dataset_start})"
            )


@dataclass
class SearchScriptArguments(PRMPathArguments):
    """Where ``recipes/run_search.py`` writes, which PRM scores, and the merge mode (the search itself: SearchConfig)."""

    output_dir: str = field(metadata={"help": "Where results.jsonl, metrics.json and scaling.png go."})
    prm_trust_remote_code: bool = field(default=False, metadata={"help": "Allow custom PRM code from the hub."})
    merge: list[str] | None = field(
        default=None, metadata={"help": "Instead of searching: merge these shard output dirs into output_dir."}
    )
    skip_metrics: bool = field(default=False, metadata={"help": "Do not grade and plot at the end."})
