"""Generators: one interface (:class:`Generator`), three backends, one factory (:func:`load_generator`).

Backends are imported lazily so that ``vllm`` (optional extra) and ``openai`` are only needed when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Completion, FinishReason, Generator, SamplingConfig
from .chat import format_chat_prompt, plain_prompt, read_chat_template
from .config import GeneratorArguments, GeneratorBackend
from .stopping import sample_seeds, truncate_at_stop

if TYPE_CHECKING:
    from .openai_backend import OpenAIGenerator
    from .transformers_backend import TransformersGenerator
    from .vllm_backend import VLLMGenerator

__all__ = [
    "Completion",
    "FinishReason",
    "Generator",
    "GeneratorArguments",
    "GeneratorBackend",
    "OpenAIGenerator",
    "SamplingConfig",
    "TransformersGenerator",
    "VLLMGenerator",
    "format_chat_prompt",
    "load_generator",
    "load_generator_from_args",
    "plain_prompt",
    "read_chat_template",
    "sample_seeds",
    "truncate_at_stop",
]


def __getattr__(name: str):
    if name == "TransformersGenerator":
        from .transformers_backend import TransformersGenerator

        return TransformersGenerator
    if name == "VLLMGenerator":
        from .vllm_backend import VLLMGenerator

        return VLLMGenerator
    if name == "OpenAIGenerator":
        from .openai_backend import OpenAIGenerator

        return OpenAIGenerator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_generator(backend: GeneratorBackend, model_name_or_path: str, **kwargs: Any) -> Generator:
    """Build a generator. ``kwargs`` go to the backend's constructor: ``tokenizer_name_or_path``,
    ``chat_template_path``, ``trust_remote_code`` (default False) for all; ``device``, ``dtype``, ``max_batch_size``
    (transformers); ``dtype``, ``gpu_memory_utilization``, ``max_model_len``, ``tensor_parallel_size``, ``engine_kwargs`` (vllm);
    ``base_url``, ``api_key``, ``max_concurrency``, ``max_retries`` (openai). ``None`` values mean "default"."""
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if backend == "transformers":
        from .transformers_backend import TransformersGenerator

        return TransformersGenerator(model_name_or_path, **kwargs)
    if backend == "vllm":
        from .vllm_backend import VLLMGenerator

        return VLLMGenerator(model_name_or_path, **kwargs)
    if backend == "openai":
        from .openai_backend import OpenAIGenerator

        return OpenAIGenerator(model_name_or_path, **kwargs)
    raise ValueError(f"Unknown generator backend {backend!r}; choose transformers, vllm or openai")


def load_generator_from_args(args: GeneratorArguments) -> Generator:
    """:func:`load_generator` from the recipe dataclass."""
    if not args.generator_model_name_or_path:
        raise ValueError("generator_model_name_or_path is required")
    return load_generator(args.generator_backend, args.generator_model_name_or_path, **args.to_kwargs())
