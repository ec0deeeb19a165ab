"""Qwen2.5-Math-PRM style: chat-formatted input, ``<extra_0>`` after each step, a two-logit reward head.

The published checkpoints ship their head as remote code (``Qwen2ForProcessRewardModel``: the Qwen2 body and
``score = Linear(h, h) -> ReLU -> Linear(h, 2)``). The body is a stock ``Qwen2Model`` and the head is two
linear layers, so both are loaded natively from the safetensors weights; remote code is only used when the
weights do not have that shape and the user passed ``trust_remote_code=True``.
"""

from __future__ import annotations

import json
import logging
import os

import torch

from prm.data.tokenizer import render_chat

from .batching import DEFAULT_TOKEN_BUDGET, BatchedVerifier, Encoded, class_margin
from .last_layer import hidden_at_positions
from .lm_scoring import truncated_encoding
from .models import default_device, default_dtype, no_cache_kwargs

logger = logging.getLogger(__name__)

QWEN_PRM_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."
STEP_TOKEN = "<extra_0>"


class ProcessRewardModel(torch.nn.Module):
    """A transformer body plus a per-token reward head, assembled without remote code."""

    def __init__(self, body: torch.nn.Module, head: torch.nn.Module):
        super().__init__()
        self.body = body
        self.score = head
        self.config = body.config

    def forward(self, input_ids: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.score(self.body(input_ids=input_ids, **kwargs).last_hidden_state)


def _weight_files(name_or_path: str) -> list[str]:
    """Local paths of the checkpoint's safetensors files (downloaded through the hub cache for hub names)."""
    if os.path.isdir(name_or_path):
        local = lambda f: os.path.join(name_or_path, f)  # noqa: E731
        exists = lambda f: os.path.isfile(local(f))  # noqa: E731
    else:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.utils import EntryNotFoundError

        def local(f):
            return hf_hub_download(name_or_path, f)

        def exists(f):
            try:
                local(f)
                return True
            except EntryNotFoundError:
                return False

    if exists("model.safetensors.index.json"):
        with open(local("model.safetensors.index.json"), encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
        shards = sorted({shard for key, shard in weight_map.items() if key.startswith("score.")})
        return [local(s) for s in shards]
    if exists("model.safetensors"):
        return [local("model.safetensors")]
    return []


def load_reward_head(name_or_path: str, hidden_size: int) -> torch.nn.Module | None:
    """The ``score.*`` head from safetensors, as a module, or None when the weights have another shape."""
    from safetensors import safe_open

    tensors = {}
    for path in _weight_files(name_or_path):
        with safe_open(path, framework="pt") as f:
            tensors.update({k[len("score.") :]: f.get_tensor(k) for k in f.keys() if k.startswith("score.")})  # noqa: SIM118
    if set(tensors) in ({"0.weight", "0.bias", "2.weight", "2.bias"}, {"0.weight", "2.weight"}):
        bias = "0.bias" in tensors
        inner = tensors["0.weight"].shape[0]
        head = torch.nn.Sequential(
            torch.nn.Linear(hidden_size, inner, bias=bias),
            torch.nn.ReLU(),
            torch.nn.Linear(inner, tensors["2.weight"].shape[0], bias=bias),
        )
    elif set(tensors) in ({"weight"}, {"weight", "bias"}):
        head = torch.nn.Linear(hidden_size, tensors["weight"].shape[0], bias="bias" in tensors)
    else:
        return None
    head.load_state_dict(tensors)
    return head


class QwenPRMVerifier(BatchedVerifier):
    def __init__(
        self,
        model,
        tokenizer,
        system_prompt: str | None = QWEN_PRM_SYSTEM_PROMPT,
        step_token: str = STEP_TOKEN,
        batch_token_budget: int = DEFAULT_TOKEN_BUDGET,
        max_batch_size: int | None = None,
        max_length: int | None = None,
        show_progress: bool = False,
    ):
        super().__init__(model, tokenizer, batch_token_budget, max_batch_size, max_length, show_progress)
        self.system_prompt = system_prompt
        self.step_token = step_token
        self.step_separator = "\n\n"  # how Qwen2.5-Math policies separate steps; the PRM sees step_token instead
        ids = tokenizer(step_token, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ValueError(f"The step token {step_token!r} must be a single token of the tokenizer, got {ids}")
        self.step_token_id = ids[0]

    @classmethod
    def from_pretrained(
        cls, name_or_path: str, device=None, dtype=None, trust_remote_code: bool = False, tokenizer=None, **kwargs
    ):
        from transformers import AutoModel

        from prm.data import load_tokenizer

        device = device or default_device()
        dtype = dtype or default_dtype(device)
        tokenizer = tokenizer or load_tokenizer(name_or_path, trust_remote_code=trust_remote_code)
        body = AutoModel.from_pretrained(name_or_path, dtype=dtype, use_safetensors=True, trust_remote_code=False)
        head = load_reward_head(name_or_path, body.config.hidden_size)
        if head is not None:
            model = ProcessRewardModel(body, head.to(dtype)).to(device)
        elif trust_remote_code:
            logger.warning("Reward head not recognised in the weights: loading the model's own (remote) code")
            del body
            model = AutoModel.from_pretrained(name_or_path, dtype=dtype, trust_remote_code=True).to(device)
        else:
            raise ValueError(
                f"{name_or_path}: no reward head of a known shape (score.0/score.2 or score) in its safetensors "
                "weights. Its own modeling code can load it: pass trust_remote_code=True (--trust_remote_code) "
                "if you trust that code."
            )
        model.eval()
        return cls(model, tokenizer, **kwargs)

    def build_text(self, problem: str, steps: list[str]) -> str:
        steps = [s.replace(self.step_token, "") for s in steps]  # a literal step token would add a fake step
        messages = [{"role": "user", "content": problem}]
        if self.system_prompt is not None:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        messages.append({"role": "assistant", "content": "".join(s + self.step_token for s in steps)})
        return render_chat(self.tokenizer, messages, add_generation_prompt=False)

    def encode(self, problems: list[str], solutions: list[list[str]]) -> list[Encoded]:
        texts = [self.build_text(p, s) for p, s in zip(problems, solutions)]
        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        out = []
        for row, steps in zip(ids, solutions):
            positions = [i for i, t in enumerate(row) if t == self.step_token_id]
            out.append(truncated_encoding(row, positions, len(steps), self.max_length))
        return out

    def _margins(self, input_ids: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        if isinstance(self.model, ProcessRewardModel):
            body = self.model.body
            logits = self.model.score(hidden_at_positions(body, input_ids, rows, positions, **no_cache_kwargs(body)))
        else:
            out = self.model(input_ids=input_ids)
            logits = (out.logits if hasattr(out, "logits") else out[0])[rows, positions]
        return class_margin(logits)
