"""Options of ``recipes/evaluate_pool.py``."""

from __future__ import annotations

from dataclasses import dataclass, field

from prm.verifiers.aggregation import AggStrategy
from prm.verifiers.loading import VerifierBackend, VerifierType
from prm.verifiers.models import DTypeName
from prm.verifiers.vllm_engine import json_mapping


@dataclass
class PoolEvalArguments:
    input: str = field(
        metadata={"help": "A results.jsonl in the search results layout (one problem per line), or its directory."}
    )
    output_dir: str = field(metadata={"help": "Where metrics.json, scaling.png (and results.jsonl) are written."})
    prm_path: str | None = field(
        default=None,
        metadata={"help": "Re-score the pool with this verifier (hub id or local path) before computing metrics."},
    )
    verifier_type: VerifierType = field(
        default="auto", metadata={"help": "Verifier protocol of --prm_path; auto detects it from the checkpoint."}
    )
    prm_device: str | None = field(default=None, metadata={"help": "Device of the verifier (default: cuda if any)."})
    prm_dtype: DTypeName = field(default="auto", metadata={"help": "Verifier weights dtype."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow the verifier's custom hub code."})
    verifier_backend: VerifierBackend = field(
        default="transformers",
        metadata={
            "help": "Where the PRM runs: transformers, or a vLLM pooling engine (token-cls, qwen-prm, step-tag and "
            "chat-plus-minus PRMs; GPU: the `vllm` extra, CPU: the venv of `make env-vllm`)."
        },
    )
    verifier_vllm_kwargs: dict | str | None = field(
        default=None,
        metadata={"help": "verifier_backend vllm: more vllm.LLM arguments (a YAML mapping or a JSON object)."},
    )
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
        if self.grading_timeout_s <= 0:
            raise ValueError("grading_timeout_s must be > 0")
        self.verifier_vllm_kwargs = json_mapping("verifier_vllm_kwargs", self.verifier_vllm_kwargs)
