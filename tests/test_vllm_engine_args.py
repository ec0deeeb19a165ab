"""vLLM engine arguments (no vLLM needed): CPU defaults that keep the CPU engine alive, GPU defaults unchanged, the
user's mapping on top."""

from __future__ import annotations

import pytest

from prm.verifiers.vllm_engine import CPU_MAX_NUM_BATCHED_TOKENS, engine_arguments, json_mapping


def test_cpu_defaults():
    args = engine_arguments("m", on_cpu=True, max_model_len=100_000, seed=3)
    assert args["enable_chunked_prefill"] is False and args["enforce_eager"] is True
    assert args["max_num_batched_tokens"] == 100_000  # a whole prompt fits in one step without chunking
    assert args["dtype"] == "float32" and args["kv_cache_memory_bytes"] > 0 and args["seed"] == 3
    assert "gpu_memory_utilization" not in args
    assert engine_arguments("m", on_cpu=True)["max_num_batched_tokens"] >= CPU_MAX_NUM_BATCHED_TOKENS


def test_gpu_defaults_are_vllms_own_but_the_memory_fraction():
    args = engine_arguments("m", on_cpu=False, dtype="auto")
    assert args == {"model": "m", "dtype": "auto", "gpu_memory_utilization": 0.5}


def test_user_mapping_wins():
    args = engine_arguments("m", on_cpu=True, engine_kwargs={"enable_chunked_prefill": True, "max_num_seqs": 4})
    assert args["enable_chunked_prefill"] is True and args["max_num_seqs"] == 4
    # A memory fraction from the user replaces the default explicit KV size (which vLLM would let win).
    args = engine_arguments("m", on_cpu=True, engine_kwargs={"gpu_memory_utilization": 0.3})
    assert args["gpu_memory_utilization"] == 0.3 and "kv_cache_memory_bytes" not in args
    assert engine_arguments("m", on_cpu=True, gpu_memory_utilization=0.2)["gpu_memory_utilization"] == 0.2


def test_json_mapping():
    assert json_mapping("x", '{"a": 1}') == {"a": 1} == json_mapping("x", {"a": 1})
    assert json_mapping("x", None) is None
    with pytest.raises(ValueError, match="x must be a JSON object"):
        json_mapping("x", "[1]")
    with pytest.raises(ValueError, match="x is not valid JSON"):
        json_mapping("x", "{")
