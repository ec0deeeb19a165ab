"""vLLM engine arguments shared by the vLLM generator and the vLLM verifier, with defaults that work on CPU.

The CPU build of vLLM (``make env-vllm``) differs from the GPU build in ways that crash or starve a default engine:

- ``gpu_memory_utilization`` is the fraction of *host* memory that the worker process may use, its own resident
  memory included (weights, and with an in-process engine everything else the Python process holds): 0.9 fails
  at start-up, 0.5 takes half the machine, and a small fraction fails as soon as the process is bigger than it
  ("less than requested memory for kv (-0.34/0.46 GiB)"). So unless ``gpu_memory_utilization`` is given, the CPU
  default is an explicit KV cache of 10% of host memory (``kv_cache_memory_bytes``), whatever the process holds.
- Per-request seeds together with chunked prefill crash the CPU engine once a batch is large enough to be chunked
  (``RuntimeError: CPU Generator does not use offset``, then ``EngineDeadError``): chunked prefill is off on CPU and
  ``max_num_batched_tokens`` is large enough to take every prompt whole.
- ``dtype="auto"`` turns float32 checkpoints into 16-bit ones; on CPU we default to float32, like the transformers
  backends, so both give the same results.
- Graph compilation and warm-up took minutes at start-up (184 s for a 2-layer model on a busy 2-core machine, 3 s
  with ``enforce_eager``), so CPU engines run eagerly.

GPU defaults are vLLM's own, except ``gpu_memory_utilization`` (0.5, to leave room for a PRM on the same GPU).
Anything in ``engine_kwargs`` (a user's mapping) overrides these defaults.
"""

from __future__ import annotations

import json
import logging
from typing import Any

logger = logging.getLogger(__name__)

GPU_MEMORY_FRACTION = 0.5
CPU_MEMORY_FRACTION = 0.1
CPU_MAX_NUM_BATCHED_TOKENS = 65536


def json_mapping(name: str, value: dict | str | None) -> dict[str, Any] | None:
    """An options mapping given as a YAML mapping (already a dict) or a JSON object on the command line."""
    if value is None or isinstance(value, dict):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a mapping (YAML) or a JSON object")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as e:
        raise ValueError(f"{name} is not valid JSON: {e}") from None
    if not isinstance(parsed, dict):
        raise ValueError(f"{name} must be a JSON object, got {value!r}")
    return parsed


def vllm_on_cpu() -> bool:
    """Whether the installed vLLM runs on CPU (the CPU build, or no accelerator)."""
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def _host_memory_bytes() -> int:
    import psutil

    return psutil.virtual_memory().total


def _context_length(model: str) -> int:
    """The checkpoint's own context length (what vLLM uses when ``max_model_len`` is not given)."""
    from transformers import PretrainedConfig

    try:
        config, _ = PretrainedConfig.get_config_dict(model)
    except OSError:
        return 0
    config = config.get("text_config", config)
    return int(config.get("max_position_embeddings") or 0)


def engine_arguments(
    model: str,
    *,
    on_cpu: bool,
    dtype: str = "auto",
    gpu_memory_utilization: float | None = None,
    max_model_len: int | None = None,
    engine_kwargs: dict[str, Any] | None = None,
    **explicit: Any,
) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM``: platform defaults, then the explicit arguments, then ``engine_kwargs``."""
    args: dict[str, Any] = {"model": model}
    if on_cpu:
        args |= {
            "dtype": "float32" if dtype == "auto" else dtype,
            "enable_chunked_prefill": False,
            # Without chunked prefill a whole prompt must fit in one scheduler step.
            "max_num_batched_tokens": max(CPU_MAX_NUM_BATCHED_TOKENS, max_model_len or _context_length(model)),
            # Compiling and warming up the graphs takes minutes on CPU, far longer than small models run.
            "enforce_eager": True,
        }
        if gpu_memory_utilization is not None:
            args["gpu_memory_utilization"] = gpu_memory_utilization
        else:
            args["kv_cache_memory_bytes"] = int(CPU_MEMORY_FRACTION * _host_memory_bytes())
    else:
        args |= {"dtype": dtype, "gpu_memory_utilization": gpu_memory_utilization or GPU_MEMORY_FRACTION}
    if max_model_len is not None:
        args["max_model_len"] = max_model_len
    args |= {k: v for k, v in explicit.items() if v is not None}
    engine_kwargs = engine_kwargs or {}
    if "gpu_memory_utilization" in engine_kwargs and "kv_cache_memory_bytes" not in engine_kwargs:
        args.pop("kv_cache_memory_bytes", None)  # vLLM would let the explicit size win over the user's fraction
    args |= engine_kwargs
    if on_cpu and args.get("enable_chunked_prefill"):
        logger.warning(
            "Chunked prefill is on with the CPU build of vLLM: seeded sampling (every prmkit request) crashes it "
            "on large batches (CPU Generator does not use offset)"
        )
    return args
