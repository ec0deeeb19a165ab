"""Generation with vLLM (GPU: the ``vllm`` extra; CPU: the venv of ``make env-vllm``), imported only when used.

Prefix caching is on: search extends the same prompts step after step, so their KV blocks are reused.
``gpu_memory_utilization`` is the fraction of GPU memory vLLM reserves; keep it below 1 minus what the PRM needs when
both share a GPU. Engine defaults (and why they differ on CPU) are in :mod:`prm.verifiers.vllm_engine`; any other
``vllm.LLM`` argument goes in ``engine_kwargs``.

vLLM spawns worker processes: a script that builds this generator must do so under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import logging
from typing import Any

from prm.data.tokenizer import DEFAULT_DATE_STRING

from .base import Completion, Generator, SamplingConfig
from .chat import encode_prompt, format_chat_prompt, read_chat_template
from .stopping import sample_seeds, truncate_at_stop

logger = logging.getLogger(__name__)


class VLLMGenerator(Generator):
    """Same contract as :class:`~search.generators.transformers_backend.TransformersGenerator`.

    Prompts are sent as token ids, encoded like the transformers backend (no special tokens, then BOS prepended
    unless present), so a chat-templated prompt never gets a second BOS. Finish reasons come from vLLM: ``length``;
    ``stop`` with a string ``stop_reason`` (a stop string, kept in the text via ``include_stop_str_in_output``);
    ``stop`` with ``stop_reason`` None is the EOS token, reported as ``eos``.
    """

    def __init__(
        self,
        model_name_or_path: str,
        *,
        tokenizer_name_or_path: str | None = None,
        dtype: str = "auto",
        trust_remote_code: bool = False,
        chat_template_path: str | None = None,
        date_string: str = DEFAULT_DATE_STRING,
        gpu_memory_utilization: float | None = None,
        max_model_len: int | None = None,
        tensor_parallel_size: int = 1,
        seed: int = 0,
        engine_kwargs: dict[str, Any] | None = None,
    ):
        try:
            from vllm import LLM
        except ImportError as e:  # pragma: no cover - depends on the optional extra
            raise ImportError(
                "The vllm backend needs vLLM: pip install 'prmkit[vllm]' on GPU machines, `make env-vllm` for the "
                "CPU build"
            ) from e
        from prm.verifiers.vllm_engine import engine_arguments, vllm_on_cpu

        args = engine_arguments(
            model_name_or_path,
            on_cpu=vllm_on_cpu(),
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            engine_kwargs=engine_kwargs,
            tokenizer=tokenizer_name_or_path or model_name_or_path,
            trust_remote_code=trust_remote_code,
            tensor_parallel_size=tensor_parallel_size,
            enable_prefix_caching=True,
            seed=seed,
        )
        logger.info("vLLM engine arguments: %s", args)
        self.llm = LLM(**args)
        self.tokenizer = self.llm.get_tokenizer()
        self.chat_template = read_chat_template(chat_template_path) if chat_template_path else None
        self.date_string = date_string

    def format_prompt(self, problem: str, system_prompt: str | None = None) -> str:
        return format_chat_prompt(self.tokenizer, problem, system_prompt, self.chat_template, self.date_string)

    def encode_prompt(self, prompt: str) -> list[int]:
        return encode_prompt(self.tokenizer, prompt)

    def generate(self, prompts: list[str], config: SamplingConfig) -> list[list[Completion]]:
        from vllm import SamplingParams

        if not prompts:
            return []
        # One request per prompt with n samples; its seed depends on the prompt, not on its batch neighbours.
        params = [
            SamplingParams(**config.api_settings(), include_stop_str_in_output=True, seed=row[0])
            for row in sample_seeds(prompts, 1, config.seed)
        ]
        encoded = [{"prompt_token_ids": self.encode_prompt(p)} for p in prompts]
        outputs = self.llm.generate(encoded, params, use_tqdm=False)
        results = []
        for request in outputs:
            n_prompt = len(request.prompt_token_ids)
            row = []
            for out in sorted(request.outputs, key=lambda o: o.index):
                # Decoded here, not vLLM's incremental text: at a length cut that text withholds a trailing
                # incomplete UTF-8 sequence, which the transformers backend (and this decode) shows as U+FFFD.
                decoded = self.tokenizer.decode(out.token_ids, skip_special_tokens=True)
                text, matched = truncate_at_stop(decoded, config.stop)
                if out.finish_reason == "length" and matched is None:
                    reason = "length"
                elif isinstance(out.stop_reason, str) or matched is not None:
                    reason = "stop"
                else:
                    reason = "eos"
                row.append(Completion(text, reason, n_prompt, len(out.token_ids)))
            results.append(row)
        return results
