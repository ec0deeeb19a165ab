"""Recipe options that name a PRM and where it runs, declared once for every recipe that loads one.

``recipes/eval_prm.py`` takes the backend options; ``recipes/run_search.py``, ``recipes/evaluate_pool.py`` and
``recipes/compute_optimal.py`` also name the PRM with ``--prm_path``. The classes are keyword-only so that a recipe's
own required options (``output_dir``, ``input``, ``runs``) can still be declared in the classes that inherit them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .base import Verifier
from .loading import VerifierBackend, VerifierType, load_verifier
from .models import DTypeName
from .vllm_engine import json_mapping


@dataclass(kw_only=True)
class VerifierBackendArguments:
    """Where the PRM's forward passes run."""

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

    def __post_init__(self):
        self.verifier_vllm_kwargs = json_mapping("verifier_vllm_kwargs", self.verifier_vllm_kwargs)


@dataclass(kw_only=True)
class PRMPathArguments(VerifierBackendArguments):
    """A PRM named by ``--prm_path``, with how to read it and where its weights go. Its trust option is each
    recipe's own (``run_search.py`` also loads a policy, so there it is ``prm_trust_remote_code``)."""

    prm_path: str | None = field(default=None, metadata={"help": "PRM checkpoint (local directory or hub name)."})
    verifier_type: VerifierType = field(
        default="auto", metadata={"help": "Verifier protocol of --prm_path; auto detects it from the checkpoint."}
    )
    prm_device: str | None = field(default=None, metadata={"help": "Device of the PRM (default: cuda if available)."})
    prm_dtype: DTypeName = field(default="auto", metadata={"help": "PRM weights dtype."})


def load_prm(args: PRMPathArguments, trust_remote_code: bool) -> Verifier:
    """The verifier ``args.prm_path`` names, loaded as ``args`` says."""
    return load_verifier(
        args.prm_path,
        args.verifier_type,
        device=args.prm_device,
        dtype=None if args.prm_dtype == "auto" else args.prm_dtype,
        trust_remote_code=trust_remote_code,
        backend=args.verifier_backend,
        engine_kwargs=args.verifier_vllm_kwargs,
    )
