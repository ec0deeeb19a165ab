"""Generation through any OpenAI-compatible ``/v1/completions`` server (``vllm serve``, SGLang, ...).

One request per prompt carries ``n``, ``stop``, ``temperature``, ``top_p``, ``max_tokens`` and a per-prompt ``seed``;
requests run concurrently in a thread pool and are retried with exponential backoff on transient errors (connection
errors, timeouts, 408/409/429/5xx).
"""

from __future__ import annotations

import logging
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prm.data.tokenizer import DEFAULT_DATE_STRING

from .base import Completion, GenerationCountError, Generator, SamplingConfig, spread
from .chat import format_chat_prompt, read_chat_template
from .stopping import sample_seeds, truncate_at_stop

logger = logging.getLogger(__name__)

_TRANSIENT_STATUS = {408, 409, 429}


def _is_transient(error: Exception) -> bool:
    import openai

    if isinstance(error, (openai.APIConnectionError, openai.APITimeoutError)):
        return True
    if isinstance(error, openai.APIStatusError):
        return error.status_code in _TRANSIENT_STATUS or error.status_code >= 500
    return False


class OpenAIGenerator(Generator):
    """Finish reasons: ``length``; ``stop`` when the server reports the matched stop string (vLLM's
    ``stop_reason``, SGLang's ``matched_stop``) — servers drop it from the text, so it is appended back; ``eos`` when
    they report ``stop`` without a matched string. A server that reports neither field is assumed to have stopped at a
    stop string when stop strings were requested (the first one is appended).

    Token counts: per-choice ``token_ids`` when the server returns them; otherwise the request's
    ``usage.completion_tokens`` is split evenly over its ``n`` choices (exact when ``n == 1``; the per-problem sum is
    always exact). ``num_prompt_tokens`` is ``usage.prompt_tokens``. Totals over the generator's life are kept in
    ``prompt_tokens`` and ``completion_tokens``.

    The server tokenizes the prompt text itself; ``vllm serve`` then adds BOS, so for chat templates that already
    start with BOS (Llama 3) pass ``extra_body={"add_special_tokens": False}``.
    """

    def __init__(
        self,
        model_name_or_path: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        tokenizer_name_or_path: str | None = None,
        chat_template_path: str | None = None,
        date_string: str = DEFAULT_DATE_STRING,
        trust_remote_code: bool = False,
        max_concurrency: int = 32,
        max_retries: int = 5,
        retry_backoff_s: float = 1.0,
        request_timeout_s: float = 600.0,
        extra_body: dict[str, Any] | None = None,
        client=None,
    ):
        import openai

        self.model = model_name_or_path
        self.client = client or openai.OpenAI(
            base_url=base_url,
            api_key=api_key or os.environ.get("OPENAI_API_KEY", "EMPTY"),
            max_retries=0,  # retried here, with logging and our own backoff
            timeout=request_timeout_s,
        )
        self.tokenizer_name_or_path = tokenizer_name_or_path or model_name_or_path
        self.trust_remote_code = trust_remote_code
        self.chat_template = read_chat_template(chat_template_path) if chat_template_path else None
        self.date_string = date_string
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.retry_backoff_s = retry_backoff_s
        self.extra_body = extra_body
        self._tokenizer = None
        self.prompt_tokens = 0
        self.completion_tokens = 0

    @property
    def tokenizer(self):
        """Loaded on first use: only the chat template needs it."""
        if self._tokenizer is None:
            from prm.data import load_tokenizer

            try:
                self._tokenizer = load_tokenizer(self.tokenizer_name_or_path, trust_remote_code=self.trust_remote_code)
            except OSError as e:
                raise OSError(
                    f"Could not load a tokenizer from {self.tokenizer_name_or_path!r} for the chat template; "
                    "pass tokenizer_name_or_path (the served model's hub id or a local copy)"
                ) from e
        return self._tokenizer

    def format_prompt(self, problem: str, system_prompt: str | None = None) -> str:
        return format_chat_prompt(self.tokenizer, problem, system_prompt, self.chat_template, self.date_string)

    def generate(self, prompts: list[str], config: SamplingConfig) -> list[list[Completion]]:
        if not prompts:
            return []
        # OpenAI-style servers take 64-bit signed seeds; vLLM and SGLang accept any int in that range.
        seeds = [row[0] for row in sample_seeds(prompts, 1, config.seed)]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(prompts))) as pool:
            return list(pool.map(lambda ps: self._complete(ps[0], ps[1], config), zip(prompts, seeds)))

    def _request(self, **kwargs):
        for attempt in range(self.max_retries + 1):
            try:
                return self.client.completions.create(**kwargs)
            except Exception as e:
                if attempt == self.max_retries or not _is_transient(e):
                    raise
                delay = self.retry_backoff_s * 2**attempt * (0.5 + random.random() / 2)
                logger.warning(
                    "Completion request failed (%s); retry %d/%d in %.1fs", e, attempt + 1, self.max_retries, delay
                )
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _complete(self, prompt: str, seed: int, config: SamplingConfig) -> list[Completion]:
        response = self._request(
            model=self.model,
            prompt=prompt,
            **config.api_settings(),
            seed=seed,
            extra_body=self.extra_body,
        )
        choices = sorted(response.choices, key=lambda c: c.index)
        if len(choices) != config.n:
            raise GenerationCountError(
                f"The server returned {len(choices)} choices for a request with n={config.n} (model {self.model!r}); "
                "check that it supports n > 1 and did not cut the request short"
            )
        usage = response.usage
        prompt_tokens = usage.prompt_tokens if usage else 0
        completion_tokens = usage.completion_tokens if usage else 0
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        counts = spread(completion_tokens, len(choices)) if choices else []
        completions = []
        for choice, count in zip(choices, counts):
            extra = choice.model_extra or {}
            token_ids = extra.get("token_ids")
            if token_ids is not None:
                count = len(token_ids)
            text, reason = self._finish(choice.text or "", choice.finish_reason, extra, config.stop)
            completions.append(Completion(text, reason, prompt_tokens, count))
        return completions

    @staticmethod
    def _finish(text: str, finish_reason: str | None, extra: dict, stop: list[str] | None):
        text, matched = truncate_at_stop(text, stop)
        if matched is not None:  # the server kept the stop string (e.g. include_stop_str_in_output)
            return text, "stop"
        if finish_reason == "length":
            return text, "length"
        if "stop_reason" in extra or "matched_stop" in extra:
            matched_stop = extra.get("stop_reason", extra.get("matched_stop"))
            if isinstance(matched_stop, str):
                return text + matched_stop, "stop"
            return text, "eos"
        if stop:
            return text + stop[0], "stop"
        return text, "eos"
