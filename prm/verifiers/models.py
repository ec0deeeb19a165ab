"""What every verifier (and the search generators) needs from a Hugging Face model: where it runs, in which
precision, how it loads, and which keyword arguments its forward pass takes."""

from __future__ import annotations

import inspect
from typing import Literal

import torch

# Precision names that configs accept: "auto" (the checkpoint's own dtype) or a torch dtype by name.
DTypeName = Literal["auto", "float32", "bfloat16", "float16"]


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device) -> torch.dtype:
    # bf16 is the PRMs' native precision on GPUs; on CPU it is slow and float32 is exact.
    return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32


def model_device(model) -> torch.device:
    """The device of a model's (first) weights."""
    return next(model.parameters()).device


def resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype | str | None:
    """A ``torch.dtype`` from its name ("bfloat16"); None (the device's default) and "auto" (the checkpoint's own
    dtype, as ``from_pretrained`` reads it) pass through."""
    if isinstance(dtype, str) and dtype != "auto":
        return getattr(torch, dtype)
    return dtype


def load_model_and_tokenizer(
    auto_class, name_or_path: str, device=None, dtype=None, trust_remote_code: bool = False, tokenizer=None
):
    """A verifier's weights (safetensors only) on ``device`` and its tokenizer exactly as saved."""
    from prm.data import load_tokenizer

    device = device or default_device()
    model = auto_class.from_pretrained(
        name_or_path, dtype=dtype or default_dtype(device), trust_remote_code=trust_remote_code, use_safetensors=True
    ).to(device)
    tokenizer = tokenizer or load_tokenizer(name_or_path, trust_remote_code=trust_remote_code)
    return model, tokenizer


def no_cache_kwargs(model) -> dict:
    """``use_cache=False`` for models that take it: decoders build a KV cache by default; scoring never reuses it."""
    return {"use_cache": False} if getattr(getattr(model, "config", None), "use_cache", None) is not None else {}


def cache_argument(model) -> str:
    """The name under which ``model.forward`` takes (and returns) its KV cache.

    transformers 5 renamed ``past_key_values`` to ``cache``; older releases only know the former."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
