"""Generator settings as a dataclass, so a recipe can put them in its ``TrlParser``.

Every field is prefixed with ``generator_`` (except ``chat_template_path`` and ``date_string``) so they never collide with TRL's
``ModelConfig`` (``model_name_or_path``, ``trust_remote_code``, ``dtype``) that a recipe may use for the verifier.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from prm.data.tokenizer import DEFAULT_DATE_STRING
from prm.verifiers.models import DTypeName
from prm.verifiers.vllm_engine import json_mapping

GeneratorBackend = Literal["transformers", "vllm", "openai"]


@dataclass
class GeneratorArguments:
    generator_backend: GeneratorBackend = field(
        default="transformers",
        metadata={
            "help": "transformers (CPU or GPU, in process), vllm (in process; GPU: the `vllm` extra, CPU: the venv of "
            "`make env-vllm`) or openai (any OpenAI-compatible /v1/completions server: vllm serve, SGLang, ...)."
        },
    )
    generator_model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Hub id or local path of the policy model; for openai, the model name the server serves."},
    )
    generator_tokenizer_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Tokenizer (for the chat template and token counts) if it differs from the model path."},
    )
    chat_template_path: str | None = field(
        default=None,
        metadata={"help": "A Jinja chat template file used instead of the tokenizer's own template."},
    )
    date_string: str = field(
        default=DEFAULT_DATE_STRING,
        metadata={
            "help": "The date chat templates print (Llama 3.x: 'Today Date: ...'), fixed so prompts, and the samples "
            "drawn from them, do not change with the day a run or a shard starts (Llama 3.2/3.3 templates would "
            "print today's date). Default: Llama 3.1's own fallback date."
        },
    )
    generator_trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow custom model code from the hub (off unless you pass it)."}
    )
    generator_device: str | None = field(
        default=None, metadata={"help": "transformers backend: torch device; default cuda if available, else cpu."}
    )
    generator_dtype: DTypeName = field(
        default="auto",
        metadata={"help": "Weights dtype. auto: float32 on CPU, the checkpoint's dtype on GPU."},
    )
    generator_max_batch_size: int = field(
        default=32, metadata={"help": "transformers backend: sequences decoded together (prompts x n)."}
    )
    generator_gpu_memory_utilization: float | None = field(
        default=None,
        metadata={
            "help": "vllm backend: fraction of GPU memory vLLM may take (leave room for the PRM on the same GPU); on "
            "CPU, the fraction of host memory reserved for the KV cache. Default: 0.5 on GPU, 0.1 on CPU."
        },
    )
    generator_max_model_len: int | None = field(
        default=None, metadata={"help": "vllm backend: context length (smaller saves KV-cache memory)."}
    )
    generator_vllm_kwargs: dict | str | None = field(
        default=None,
        metadata={
            "help": "vllm backend: more vllm.LLM engine arguments, a mapping in YAML or a JSON object on the command "
            "line, e.g. '{\"enable_chunked_prefill\": true}'. They override prmkit's defaults (on CPU: chunked "
            "prefill off, float32, a large max_num_batched_tokens)."
        },
    )
    generator_tensor_parallel_size: int = field(default=1, metadata={"help": "vllm backend: GPUs per model."})
    generator_base_url: str | None = field(
        default=None, metadata={"help": "openai backend: server URL, e.g. http://localhost:8000/v1."}
    )
    generator_api_key: str | None = field(
        default=None, metadata={"help": "openai backend: API key; default $OPENAI_API_KEY or 'EMPTY'."}
    )
    generator_max_concurrency: int = field(
        default=32, metadata={"help": "openai backend: requests in flight at once (one request per prompt)."}
    )
    generator_max_retries: int = field(
        default=5, metadata={"help": "openai backend: retries of a request after a transient error (backoff)."}
    )
    generator_extra_body: str | None = field(
        default=None,
        metadata={
            "help": "openai backend: JSON object of extra request fields, e.g. '{\"add_special_tokens\": false}' for "
            "vllm serve with chat templates that already start with BOS (Llama 3)."
        },
    )

    def __post_init__(self):
        if self.generator_max_batch_size < 1:
            raise ValueError("generator_max_batch_size must be >= 1")
        if (
            self.generator_gpu_memory_utilization is not None
            and not 0.0 < self.generator_gpu_memory_utilization <= 1.0
        ):
            raise ValueError("generator_gpu_memory_utilization must be in (0, 1]")
        self.generator_vllm_kwargs = json_mapping("generator_vllm_kwargs", self.generator_vllm_kwargs)
        if self.generator_max_concurrency < 1:
            raise ValueError("generator_max_concurrency must be >= 1")
        if self.generator_max_retries < 0:
            raise ValueError("generator_max_retries must be >= 0")
        if self.generator_extra_body is not None:
            json_mapping("generator_extra_body", self.generator_extra_body)

    def to_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`search.generators.load_generator` (backend and model excluded)."""
        common: dict[str, Any] = {
            "tokenizer_name_or_path": self.generator_tokenizer_name_or_path,
            "chat_template_path": self.chat_template_path,
            "date_string": self.date_string,
            "trust_remote_code": self.generator_trust_remote_code,
        }
        if self.generator_backend == "transformers":
            return common | {
                "device": self.generator_device,
                "dtype": self.generator_dtype,
                "max_batch_size": self.generator_max_batch_size,
            }
        if self.generator_backend == "vllm":
            return common | {
                "dtype": self.generator_dtype,
                "gpu_memory_utilization": self.generator_gpu_memory_utilization,
                "max_model_len": self.generator_max_model_len,
                "tensor_parallel_size": self.generator_tensor_parallel_size,
                "engine_kwargs": self.generator_vllm_kwargs,
            }
        return common | {
            "base_url": self.generator_base_url,
            "api_key": self.generator_api_key,
            "max_concurrency": self.generator_max_concurrency,
            "max_retries": self.generator_max_retries,
            "extra_body": json.loads(self.generator_extra_body) if self.generator_extra_body else None,
        }
