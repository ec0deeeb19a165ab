"""Options of ``recipes/compute_optimal.py``."""

from __future__ import annotations

from dataclasses import dataclass, field

from prm.verifiers.aggregation import AggStrategy
from prm.verifiers.arguments import PRMPathArguments

VOTES = ("weighted", "maj", "naive")


@dataclass
class ComputeOptimalArguments(PRMPathArguments):
    runs: list[str] = field(
        metadata={
            "help": "Finished search runs of the policy under study (directories holding results.jsonl and "
            "search_config.json): any methods, any N, the same problems."
        }
    )
    output_dir: str = field(metadata={"help": "Where compute_optimal.json and compute_optimal.png are written."})
    reference_runs: list[str] | None = field(
        default=None,
        metadata={
            "help": "Runs of other (e.g. larger) policies on the same problems: their single-sample and majority "
            "accuracy become reference lines, placed on the FLOPs axis."
        },
    )
    num_bins: int = field(default=5, metadata={"help": "Difficulty levels (quantiles of problems)."})
    votes: list[str] = field(
        default_factory=lambda: list(VOTES),
        metadata={"help": "How a pool gives its answer, each a strategy: weighted (PRM-weighted), maj, naive (top)."},
    )
    agg_strategy: AggStrategy = field(
        default="last", metadata={"help": "How a solution's step scores become one score."}
    )
    policy_params: float | None = field(
        default=None,
        metadata={"help": "Parameters of the studied policy; default: read from its checkpoint (search_config.json)."},
    )
    verifier_params: float | None = field(
        default=None, metadata={"help": "Parameters of the verifier; default: read from its checkpoint."}
    )
    reference_params: list[float] | None = field(
        default=None,
        metadata={
            "help": "Parameters of the reference runs' policies: one value for all, or one per reference run; "
            "default: read from each run's checkpoint."
        },
    )
    count_prompt_tokens: bool = field(
        default=True,
        metadata={
            "help": "Count each problem's prompt with the policy's tokenizer and chat template for the FLOPs "
            "(rows' own prompt_tokens are used when present); false leaves the prompt out."
        },
    )
    prm_path: str | None = field(
        default=None,
        kw_only=True,  # as declared in PRMPathArguments, whose help this makes specific
        metadata={
            "help": "Re-score every run (and reference run) with this verifier first, as recipes/evaluate_pool.py "
            "does (no regeneration); its parameters then count for the verifier tokens."
        },
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow the verifier's custom hub code."})
    bootstrap_samples: int = field(default=1000, metadata={"help": "Resamples of problems for the 95%% intervals."})
    seed: int = field(default=0, metadata={"help": "Seed of the two-fold split and the bootstrap."})
    grading_timeout_s: float = field(
        default=5.0, metadata={"help": "Time limit of one answer comparison (math-verify in a worker process)."}
    )

    def __post_init__(self):
        super().__post_init__()
        if not self.runs:
            raise ValueError("runs: give at least one run directory")
        unknown = sorted(set(self.votes) - set(VOTES))
        if unknown or not self.votes:
            raise ValueError(f"votes must be among {list(VOTES)}, got {self.votes}")
        if self.num_bins < 1:
            raise ValueError(f"num_bins must be at least 1, got {self.num_bins}")
        if self.bootstrap_samples < 10:
            raise ValueError(f"bootstrap_samples must be at least 10, got {self.bootstrap_samples}")
        for name in ("policy_params", "verifier_params"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.reference_params is not None:
            if any(p < 0 for p in self.reference_params):
                raise ValueError(f"reference_params must be >= 0, got {self.reference_params}")
            if len(self.reference_params) not in (1, len(self.reference_runs or [])):
                raise ValueError(
                    f"reference_params: give one value or one per reference run ({len(self.reference_runs or [])}), "
                    f"got {len(self.reference_params)}"
                )
        if self.grading_timeout_s <= 0:
            raise ValueError("grading_timeout_s must be > 0")
