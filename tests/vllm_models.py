"""Tiny checkpoints the CPU build of vLLM accepts (its attention kernels need head_dim >= 32; these use 64), in
every PRM shape, saved like hub checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import (
    AutoModelForCausalLM,
    AutoModelForTokenClassification,
    LlamaConfig,
    MistralConfig,
    Qwen2Config,
    Qwen2Model,
)

from prm.data import save_separator
from prm.testing import build_tiny_tokenizer

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SHAPE = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 64,
    "max_position_embeddings": 2048,
    "tie_word_embeddings": False,
}


def config(kind: str, tokenizer, **kwargs):
    cls = {"qwen2": Qwen2Config, "llama": LlamaConfig, "mistral": MistralConfig}[kind]
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    return cls(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **ids, **SHAPE, **kwargs)


def save_causal_lm(path: Path, kind: str = "qwen2", seed: int = 0, tokenizer=None) -> str:
    tokenizer = tokenizer or build_tiny_tokenizer()
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(config(kind, tokenizer)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def save_token_cls(path: Path, kind: str = "qwen2", separator: str = "\n\n", seed: int = 1, tokenizer=None) -> str:
    tokenizer = tokenizer or build_tiny_tokenizer()
    torch.manual_seed(seed)
    model = AutoModelForTokenClassification.from_config(config(kind, tokenizer, num_labels=2))
    save_separator(model.config, separator)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def save_qwen_prm(path: Path, seed: int = 2) -> str:
    """Qwen2.5-Math-PRM's layout: a Qwen2 body, ``score = Linear(h, h) -> ReLU -> Linear(h, 2)``, the
    ``Qwen2ForProcessRewardModel`` architecture, a chat template and the ``<extra_0>`` step token."""
    tokenizer = build_tiny_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    cfg = config("qwen2", tokenizer)
    body = Qwen2Model(cfg)
    hidden = cfg.hidden_size
    head = torch.nn.Sequential(torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2))
    tensors = {f"model.{k}": v.contiguous() for k, v in body.state_dict().items()}
    tensors.update({f"score.{k}": v.contiguous() for k, v in head.state_dict().items()})
    path.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    saved = cfg.to_dict() | {"architectures": ["Qwen2ForProcessRewardModel"]}
    (path / "config.json").write_text(json.dumps(saved))
    tokenizer.save_pretrained(path)
    return str(path)


def save_chat_lm(path: Path, seed: int = 3) -> str:
    """An RLHFlow-style causal LM (llama type, a chat template)."""
    tokenizer = build_tiny_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    return save_causal_lm(path, "llama", seed, tokenizer)
