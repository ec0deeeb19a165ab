"""The one generator interface: sample continuations of prompts, stopping at a step separator."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Literal

FinishReason = Literal["stop", "eos", "length"]


class GenerationCountError(ValueError):
    """A generator returned a different number of completions than were asked for."""


@dataclass
class SamplingConfig:
    """How to sample. ``stop`` ends a continuation at the first occurrence (the stop string is kept)."""

    n: int = 1
    temperature: float = 0.8
    top_p: float = 1.0
    max_new_tokens: int = 512
    stop: list[str] | None = None
    seed: int | None = None

    def api_settings(self) -> dict[str, Any]:
        """The per-request settings under the names of the OpenAI completions API, which vLLM's ``SamplingParams``
        shares (the seed is per request: see ``sample_seeds``)."""
        return {
            "n": self.n,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_new_tokens,
            "stop": list(self.stop) if self.stop else None,
        }


@dataclass
class Completion:
    """One sampled continuation."""

    text: str
    finish_reason: FinishReason
    num_prompt_tokens: int
    num_generated_tokens: int


def spread(total: int, parts: int) -> list[int]:
    """``total`` split over ``parts`` as evenly as possible, the earlier parts taking the remainder (children over
    parent beams in a search; a request's generated tokens over its choices)."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class Generator(ABC):
    """Backends: transformers (CPU/GPU), vLLM (GPU), any OpenAI-compatible completions server.

    ``generate(prompts, config)[i]`` holds ``config.n`` completions of ``prompts[i]``. Prompts are raw text
    (already chat-formatted with :meth:`format_prompt`), so a search can extend a partial solution by appending.
    """

    @abstractmethod
    def generate(self, prompts: list[str], config: SamplingConfig) -> list[list[Completion]]:
        """Sample ``config.n`` continuations of each prompt."""

    @abstractmethod
    def format_prompt(self, problem: str, system_prompt: str | None = None) -> str:
        """The text that precedes the first step of a solution (chat template applied)."""


def generate_checked(generator: Generator, prompts: list[str], config: SamplingConfig) -> list[list[Completion]]:
    """``generator.generate``, failing unless every prompt got exactly ``config.n`` completions.

    Searches and Monte-Carlo labelling pair completions with their prompts (and scores) by position: a backend that
    returned fewer (an OpenAI-compatible server can) would silently give later subtrees the wrong scores.
    """
    outputs = generator.generate(prompts, config)
    if len(outputs) != len(prompts):
        raise GenerationCountError(
            f"{type(generator).__name__} returned completions for {len(outputs)} prompts, {len(prompts)} were asked"
        )
    for i, completions in enumerate(outputs):
        if len(completions) != config.n:
            raise GenerationCountError(
                f"{type(generator).__name__} returned {len(completions)} completions for prompt {i} of a call that "
                f"asked for n={config.n}; completions cannot be paired with their prompts"
            )
    return outputs
