"""PRM scoring with a vLLM pooling engine, behind the same ``Verifier`` interface.

The input of every style is built by that style's transformers verifier (its ``encode``: token ids and the
positions that carry a step score), so both backends read exactly the same tokens; only the forward pass runs in
vLLM. What vLLM returns per style (vLLM 0.32, ``runner="pooling"``):

- ``token-cls`` (``*ForTokenClassification``, ours and TRL's): the ``token_classify`` task, ALL pooling, raw logits
  (``use_activation=False``) of every token; the log-odds at the score positions are computed as in transformers.
- ``qwen-prm`` (``Qwen2ForProcessRewardModel``, Qwen2.5-Math-PRM): vLLM's native model with STEP pooling on the
  step token (``<extra_0>``): one row of raw logits per step token.
- ``step-tag`` and ``chat-plus-minus`` (causal LMs that answer ``+``/``-``): vLLM's pooling adapter drops the
  output layer, and its ``returned_token_ids`` select columns of the *hidden states*, not of the vocabulary logits,
  so Math-Shepherd's documented vLLM recipe does not give its scores. Instead the engine returns the final hidden
  states (``token_embed``, ALL pooling, no normalisation) and the two candidate rows of the output layer, read from
  the checkpoint's safetensors, are applied here at the score positions.

Models vLLM cannot run (architectures it does not implement, remote-code heads) fail at start-up with vLLM's
error, prefixed with what to use instead.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import torch

from prm.step_likelihood import read_step_likelihood_weight

from .batching import Encoded, EncodedVerifier, class_margin
from .lm_scoring import margins_from_hidden

logger = logging.getLogger(__name__)

VLLM_STYLES = ("token-cls", "qwen-prm", "step-tag", "chat-plus-minus")
# Requests per engine call: bounds the hidden states a causal-LM style holds in memory at once.
_REQUESTS_PER_CALL = 256


def _checkpoint_tensors(name_or_path: str, names: list[str]) -> dict[str, torch.Tensor]:
    """The named tensors of a local checkpoint's safetensors files (a hub name is resolved through the cache)."""
    from safetensors import safe_open

    folder = name_or_path
    if not os.path.isdir(folder):
        from huggingface_hub import snapshot_download

        folder = snapshot_download(name_or_path, allow_patterns=["*.safetensors", "*.json"])
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
        files = sorted({weight_map[n] for n in names if n in weight_map})
    else:
        files = ["model.safetensors"]
    found: dict[str, torch.Tensor] = {}
    for file in files:
        with safe_open(os.path.join(folder, file), framework="pt") as f:
            found.update({n: f.get_tensor(n) for n in names if n in f.keys()})  # noqa: SIM118
    return found


def candidate_rows(name_or_path: str, config, good_id: int, bad_id: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The output-layer rows of the two candidate tokens ``[2, H]`` (and their bias, if any)."""
    names = ["lm_head.weight", "lm_head.bias", "model.embed_tokens.weight"]
    tensors = _checkpoint_tensors(name_or_path, names)
    weight = tensors.get("lm_head.weight")
    if weight is None and getattr(config, "tie_word_embeddings", False):
        weight = tensors.get("model.embed_tokens.weight")
    if weight is None:
        raise ValueError(
            f"{name_or_path}: no lm_head.weight (or tied model.embed_tokens.weight) in its safetensors; the vllm "
            "verifier backend cannot read this causal-LM PRM: use verifier_backend transformers"
        )
    bias = tensors.get("lm_head.bias")
    ids = [good_id, bad_id]
    return weight[ids].float(), None if bias is None else bias[ids].float()


class VLLMVerifier(EncodedVerifier):
    """A ``Verifier`` whose forward passes run in vLLM. ``encoder`` is the transformers verifier of the same style
    built without a model (it only tokenizes); ``llm`` a ``vllm.LLM`` with ``runner="pooling"``."""

    def __init__(self, style: str, encoder, llm, name_or_path: str, show_progress: bool = False):
        if style not in VLLM_STYLES:
            raise ValueError(f"The vllm verifier backend serves {', '.join(VLLM_STYLES)}, not {style!r}")
        self.style = style
        self.encoder = encoder
        self.llm = llm
        self.tokenizer = encoder.tokenizer
        self.step_separator = encoder.step_separator
        self.max_length = encoder.max_length
        self.show_progress = show_progress
        self.progress_desc: str | None = None
        self.tokens_processed = 0
        self._rows = None
        if style in ("step-tag", "chat-plus-minus"):
            hf_config = llm.llm_engine.model_config.hf_config
            self._rows = candidate_rows(name_or_path, hf_config, encoder.good_id, encoder.bad_id)
            self._softcap = getattr(hf_config, "final_logit_softcapping", None)

    def encode(self, problems: list[str], solutions: list[list[str]]) -> list[Encoded]:
        return self.encoder.encode(problems, solutions)

    def _groups(self, encoded: list[Encoded], runnable: list[int]) -> list[list[int]]:
        return [runnable[start : start + _REQUESTS_PER_CALL] for start in range(0, len(runnable), _REQUESTS_PER_CALL)]

    def _group_margins(self, encoded: list[Encoded], group: list[int]) -> list[torch.Tensor]:
        return self._margins([encoded[i] for i in group])

    def _margins(self, batch: list[Encoded]) -> list[torch.Tensor]:
        from vllm import PoolingParams

        prompts = [{"prompt_token_ids": enc.input_ids} for enc in batch]
        task = "token_classify" if self._rows is None else "token_embed"
        outputs = self.llm.encode(
            prompts, pooling_task=task, pooling_params=PoolingParams(use_activation=False), use_tqdm=False
        )
        margins = []
        for enc, out in zip(batch, outputs):
            data = out.outputs.data.float()
            if self.style == "qwen-prm":  # STEP pooling: one row per step token, in order
                if data.shape[0] != len(enc.positions):
                    raise RuntimeError(
                        f"vLLM's STEP pooling returned {data.shape[0]} rows for {len(enc.positions)} step tokens"
                    )
                picked = data
            else:
                picked = data[torch.tensor(enc.positions)]
            if self._rows is None:
                margins.append(class_margin(picked))
            else:
                margins.append(margins_from_hidden(picked, *self._rows, self._softcap))
        return margins


def _refuse_step_likelihood(name_or_path: str, style: str) -> None:
    if style == "token-cls" and read_step_likelihood_weight(name_or_path) is not None:
        raise ValueError(
            f"{name_or_path} adds its own step likelihood to each score (step_likelihood_weight), which vLLM's "
            "token-classification pooling does not return; use verifier_backend transformers"
        )


def load_vllm_verifier(
    name_or_path: str,
    style: str,
    *,
    dtype: str | torch.dtype | None = None,
    trust_remote_code: bool = False,
    max_length: int | None = None,
    engine_kwargs: dict[str, Any] | None = None,
    show_progress: bool = False,
    **encoder_kwargs: Any,
) -> VLLMVerifier:
    """A :class:`VLLMVerifier` for a checkpoint of ``style``. ``encoder_kwargs`` go to the style's transformers
    verifier (``step_separator``, ``input_layout``, ``step_tag``, ...); ``batch_token_budget`` and
    ``max_batch_size`` are ignored (vLLM schedules its own batches)."""
    _refuse_step_likelihood(name_or_path, style)
    try:
        from vllm import LLM
    except ImportError as e:
        raise ImportError(
            "verifier_backend vllm needs vLLM: pip install 'prmkit[vllm]' on GPU machines, `make env-vllm` for the "
            "CPU build"
        ) from e
    from .vllm_engine import engine_arguments, vllm_on_cpu

    if style not in VLLM_STYLES:
        raise ValueError(f"The vllm verifier backend serves {', '.join(VLLM_STYLES)}, not {style!r}")
    for ignored in ("batch_token_budget", "max_batch_size", "device"):
        encoder_kwargs.pop(ignored, None)
    if isinstance(dtype, torch.dtype):
        dtype = str(dtype).removeprefix("torch.")
    on_cpu = vllm_on_cpu()
    explicit: dict[str, Any] = {"runner": "pooling", "trust_remote_code": trust_remote_code}
    if style in ("step-tag", "chat-plus-minus"):
        explicit["convert"] = "embed"  # final hidden states; the candidate rows are applied here
    pooler: dict[str, Any] = {}
    encoder = _encoder(style, name_or_path, trust_remote_code, max_length, encoder_kwargs)
    if style == "qwen-prm":
        pooler = {"tok_pooling_type": "STEP", "step_tag_id": encoder.step_token_id}
    elif style != "token-cls":
        pooler = {"task": "token_embed", "tok_pooling_type": "ALL"}
    if pooler:
        explicit["pooler_config"] = pooler
    args = engine_arguments(
        name_or_path,
        on_cpu=on_cpu,
        dtype=dtype or "auto",
        max_model_len=max_length,
        engine_kwargs=engine_kwargs,
        **explicit,
    )
    logger.info("vLLM verifier engine arguments: %s", args)
    try:
        llm = LLM(**args)
    except Exception as e:
        raise RuntimeError(
            f"vLLM could not load {name_or_path} as a {style} PRM ({type(e).__name__}: {e}); "
            "use verifier_backend transformers for it"
        ) from e
    encoder.max_length = max_length or llm.llm_engine.model_config.max_model_len
    return VLLMVerifier(style, encoder, llm, name_or_path, show_progress=show_progress)


def _encoder(style: str, name_or_path: str, trust_remote_code: bool, max_length: int | None, kwargs: dict):
    """The style's transformers verifier without a model: it tokenizes and places score positions only."""
    from prm.data import load_tokenizer, read_separator

    from .chat_plus_minus import ChatPlusMinusVerifier
    from .qwen_prm import QwenPRMVerifier
    from .step_tag import StepTagVerifier
    from .token_cls import TokenClassificationVerifier

    tokenizer = load_tokenizer(name_or_path, trust_remote_code=trust_remote_code)
    if style == "token-cls":
        kwargs.setdefault("step_separator", read_separator(name_or_path))
    classes = {
        "token-cls": TokenClassificationVerifier,
        "qwen-prm": QwenPRMVerifier,
        "step-tag": StepTagVerifier,
        "chat-plus-minus": ChatPlusMinusVerifier,
    }
    return classes[style](None, tokenizer, max_length=max_length, **kwargs)
