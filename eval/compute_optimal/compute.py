"""Compute per problem: parameter counts read from checkpoints, and FLOPs approximated from token counts.

FLOPs of one problem = 2 x policy parameters x (prompt tokens + generated tokens)
                     + 2 x verifier parameters x verifier tokens.

2 x parameters is the forward-pass cost of one token (one multiply and one add per weight); attention over the
context is left out, which undercounts long contexts. Every parameter in the checkpoint counts, embeddings included.
The prompt is counted once per problem: its KV cache is shared by all samples and steps (vLLM prefix caching);
generated tokens are all the tokens the policy sampled for the problem, pruned candidates included; verifier tokens
are the tokens the verifier ran (with prefix caching, only the new ones).
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np

FLOPS_APPROXIMATION = (
    "FLOPs per problem = 2 x policy parameters x (prompt tokens + generated tokens) + 2 x verifier parameters x "
    "verifier tokens. 2 x parameters per token is the forward-pass cost without attention over the context; all "
    "checkpoint parameters count, embeddings included; the prompt counts once per problem (its KV cache shared by "
    "all samples and steps, as with vLLM prefix caching); generated tokens include pruned candidates; verifier "
    "tokens are those the verifier ran. Best-of-N prefixes of n < N samples are charged n/N of the run's verifier "
    "tokens; majority vote over Best-of-N samples needs no verifier and is charged none."
)


def safetensors_parameters(path: str | Path) -> int:
    """Number of parameters in one ``.safetensors`` file, read from its JSON header (no tensor is loaded)."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    return sum(math.prod(t["shape"]) for name, t in header.items() if name != "__metadata__")


def config_parameters(config: dict) -> int:
    """Estimate of a decoder's parameters from its ``config.json`` (Llama/Qwen/Mistral layout: attention with
    grouped KV heads, gated MLP, embeddings tied or not). Used only when no safetensors file is present."""
    try:
        d, layers, vocab = config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]
    except KeyError as missing:
        raise ValueError(f"config.json lacks {missing} needed to estimate the parameter count") from None
    heads = config.get("num_attention_heads", 1)
    head_dim = config.get("head_dim") or d // heads
    kv = config.get("num_key_value_heads", heads) * head_dim
    inner = config.get("intermediate_size", 4 * d)
    attention = d * heads * head_dim * 2 + d * kv * 2
    mlp = 3 * d * inner
    embeddings = vocab * d * (1 if config.get("tie_word_embeddings", False) else 2)
    return layers * (attention + mlp + 2 * d) + embeddings + d


def cached_snapshot(repo_id: str) -> Path | None:
    """The local copy of a hub checkpoint in the Hugging Face cache, if one is there (nothing is downloaded)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached, or not a valid repo id: the caller asks for the count
        return None


def count_parameters(path: str | Path) -> tuple[int, str]:
    """Parameters of a checkpoint and how they were counted: safetensors headers (exact, sharded or not), else an
    estimate from ``config.json``. A hub id is read from the local Hugging Face cache; nothing is downloaded."""
    directory = Path(path)
    if not directory.is_dir():
        directory = cached_snapshot(str(path)) or directory
    if not directory.is_dir():
        raise ValueError(f"{path}: not a local checkpoint directory nor in the hub cache; give its parameter count")
    files = sorted(directory.glob("*.safetensors"))
    if files:
        return sum(safetensors_parameters(f) for f in files), "safetensors header"
    config = directory / "config.json"
    if config.is_file():
        return config_parameters(json.loads(config.read_text())), "config.json estimate"
    raise ValueError(f"{path}: no *.safetensors and no config.json to count parameters from; give the count")


def flops(
    policy_params: float,
    prompt_tokens: np.ndarray,
    generated_tokens: np.ndarray,
    verifier_params: float,
    verifier_tokens: np.ndarray,
) -> np.ndarray:
    """FLOPs per problem (see :data:`FLOPS_APPROXIMATION`); arrays broadcast."""
    return 2.0 * policy_params * (prompt_tokens + generated_tokens) + 2.0 * verifier_params * verifier_tokens
