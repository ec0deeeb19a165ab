"""The verifier registry (type name -> class) and loading any supported PRM by path or hub name, detecting its
style from the config where that is clear."""

from __future__ import annotations

import logging
import os
from typing import Literal

import torch

from .base import Verifier
from .chat_plus_minus import ChatPlusMinusVerifier
from .models import resolve_dtype
from .qwen_prm import QwenPRMVerifier
from .step_tag import StepTagVerifier
from .token_cls import TokenClassificationVerifier

logger = logging.getLogger(__name__)

VerifierType = Literal["auto", "token-cls", "qwen-prm", "step-tag", "chat-plus-minus"]
# Each class loads itself with ``from_pretrained(name_or_path, device=, dtype=, trust_remote_code=, **kwargs)``.
VERIFIER_CLASSES: dict[str, type[Verifier]] = {
    "token-cls": TokenClassificationVerifier,
    "qwen-prm": QwenPRMVerifier,
    "step-tag": StepTagVerifier,
    "chat-plus-minus": ChatPlusMinusVerifier,
}
VERIFIER_TYPES: tuple[str, ...] = tuple(VERIFIER_CLASSES)
VerifierBackend = Literal["transformers", "vllm"]

# Causal-LM PRMs look alike in their config; these well-known names settle which protocol they were trained for.
_NAME_HINTS = {"math-shepherd": "step-tag", "rlhflow": "chat-plus-minus"}


def detect_verifier_type(name_or_path: str, config: dict) -> str:
    """The verifier type a checkpoint's config implies; raises when it is ambiguous."""
    architectures = config.get("architectures") or []
    if any("ProcessRewardModel" in a for a in architectures):
        return "qwen-prm"
    if any(a.endswith("ForTokenClassification") for a in architectures):
        return "token-cls"
    if any(a.endswith("ForCausalLM") for a in architectures):
        lowered = name_or_path.lower()
        for hint, kind in _NAME_HINTS.items():
            if hint in lowered:
                return kind
        raise ValueError(
            f"{name_or_path} is a causal LM; it could be a step-tag (Math-Shepherd) or a chat-plus-minus "
            "(RLHFlow) PRM. Pass --verifier_type step-tag or --verifier_type chat-plus-minus."
        )
    raise ValueError(
        f"Cannot tell the verifier type of {name_or_path} from its architectures {architectures}; "
        f"pass --verifier_type (one of {', '.join(VERIFIER_TYPES)})"
    )


def resolve_verifier_type(name_or_path: str, verifier_type: VerifierType = "auto") -> str:
    """``verifier_type`` itself, or the type detected from the checkpoint's config when it is "auto"."""
    looks_local = name_or_path.startswith(("/", "./", "../", "~")) or os.path.isabs(name_or_path)
    if looks_local and not os.path.isdir(os.path.expanduser(name_or_path)):
        raise FileNotFoundError(f"No model directory at {name_or_path!r}")
    if verifier_type != "auto":
        if verifier_type not in VERIFIER_TYPES:
            raise ValueError(
                f"Unknown verifier_type {verifier_type!r}; choose one of auto, {', '.join(VERIFIER_TYPES)}"
            )
        return verifier_type
    from transformers import PretrainedConfig

    config, _ = PretrainedConfig.get_config_dict(name_or_path)
    detected = detect_verifier_type(name_or_path, config)
    logger.info("Detected verifier type %s for %s", detected, name_or_path)
    return detected


def load_verifier(
    name_or_path: str,
    verifier_type: VerifierType = "auto",
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    trust_remote_code: bool = False,
    backend: VerifierBackend = "transformers",
    engine_kwargs: dict | None = None,
    **kwargs,
) -> Verifier:
    """Load a PRM as a ``Verifier``. Extra keyword arguments go to the verifier class (e.g. ``step_separator``
    for token-cls, ``batch_token_budget``, ``max_length``, ``show_progress``). Weights load from safetensors;
    remote code runs only with ``trust_remote_code=True``.

    ``backend="vllm"`` runs the forward passes in a vLLM pooling engine (:mod:`prm.verifiers.vllm_backend`; the
    same inputs and scores); ``engine_kwargs`` are more ``vllm.LLM`` arguments. vLLM picks its own device."""
    verifier_type = resolve_verifier_type(name_or_path, verifier_type)  # type: ignore[assignment]
    if backend == "vllm":
        from .vllm_backend import load_vllm_verifier

        return load_vllm_verifier(
            name_or_path,
            verifier_type,
            dtype=None if dtype == "auto" else dtype,
            trust_remote_code=trust_remote_code,
            engine_kwargs=engine_kwargs,
            **kwargs,
        )
    if backend != "transformers":
        raise ValueError(f"Unknown verifier backend {backend!r}; choose transformers or vllm")
    if engine_kwargs:
        logger.warning("vLLM engine arguments ignored: the verifier backend is transformers")
    return VERIFIER_CLASSES[verifier_type].from_pretrained(
        name_or_path, device=device, dtype=resolve_dtype(dtype), trust_remote_code=trust_remote_code, **kwargs
    )
