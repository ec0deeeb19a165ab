"""Generation with vLLM (GPU, optional ``vllm`` extra, imported only when this backend is built).

Prefix caching is on: search extends the same prompts step after step, so their KV blocks are reused.
``gpu_memory_utilization`` is the fraction of GPU memory vLLM reserves; keep it below 1 minus what the PRM needs when
both share a GPU.
"""

from __future__ import annotations

import logging
import random

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
        gpu_memory_utilization: float = 0.5,
        max_model_len: int | None = None,
        tensor_parallel_size: int = 1,
        seed: int = 0,
        **llm_kwargs,
    ):
        try:
            from vllm import LLM
        except ImportError as e:  # pragma: no cover - depends on the optional extra
            raise ImportError("The vllm backend needs vLLM: pip install 'prmkit[vllm]'") from e

        self.llm = LLM(
            model=model_name_or_path,
            tokenizer=tokenizer_name_or_path or model_name_or_path,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            tensor_parallel_size=tensor_parallel_size,
            enable_prefix_caching=True,
            seed=seed,
            **llm_kwargs,
        )
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
        seed = config.seed if config.seed is not None else random.SystemRandom().getrandbits(63)
        # One request per prompt with n samples; its seed depends on the prompt, not on its batch neighbours.
        params = [
            SamplingParams(
                n=config.n,
                temperature=config.temperature,
                top_p=config.top_p,
                max_tokens=config.max_new_tokens,
                stop=list(config.stop) if config.stop else None,
                include_stop_str_in_output=True,
                seed=row[0],
            )
            for row in sample_seeds(prompts, 1, seed)
        ]
        encoded = [{"prompt_token_ids": self.encode_prompt(p)} for p in prompts]
        outputs = self.llm.generate(encoded, params, use_tqdm=False)
        results = []
        for request in outputs:
            n_prompt = len(request.prompt_token_ids)
            row = []
            for out in sorted(request.outputs, key=lambda o: o.index):
                text, matched = truncate_at_stop(out.text, config.stop)
                if out.finish_reason == "length" and matched is None:
                    reason = "length"
                elif isinstance(out.stop_reason, str) or matched is not None:
                    reason = "stop"
                else:
                    reason = "eos"
                row.append(Completion(text, reason, n_prompt, len(out.token_ids)))
            results.append(row)
        return results
