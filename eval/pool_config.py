"""Options of ``recipes/evaluate_pool.py``."""

from __future__ import annotations

from dataclasses import dataclass, field

from prm.verifiers.aggregation import AggStrategy
from prm.verifiers.arguments import PRMPathArguments


@dataclass
class PoolEvalArguments(PRMPathArguments):
    input: str = field(
        metadata={"help": "A results.jsonl in the search results layout (one problem per line), or its directory."}
    )
    output_dir: str = field(metadata={"help": "Where metrics.json, scaling.png (and results.jsonl) are written."})
    prm_path: str | None = field(
        default=None,
        kw_only=True,  # as declared in PRMPathArguments, whose help this makes specific
        metadata={"help": "Re-score the pool with this verifier (hub id or local path) before computing metrics."},
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow the verifier's custom hub code."})
    agg_strategy: AggStrategy = field(
        default="last", metadata={"help": "How a solution's step scores become one score (naive/weighted votes)."}
    )
    step_separator: str = field(
        default="\\n\\n",
        metadata={"help": "Splits completions into steps when rows have no 'steps' (shell escapes like \\n decoded)."},
    )
    grading_timeout_s: float = field(
        default=5.0, metadata={"help": "Time limit of one answer comparison (math-verify in a worker process)."}
    )

    def __post_init__(self):
        super().__post_init__()
        if self.grading_timeout_s <= 0:
            raise ValueError("grading_timeout_s must be > 0")
