"""Deterministic test doubles for search: a scripted generator and a verifier whose step scores are known."""

from __future__ import annotations

import hashlib

from prm.verifiers.base import Verifier
from search.generators.base import Completion, Generator, SamplingConfig


def _h(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "little")


class ScriptedGenerator(Generator):
    """Steps look like ``step<k> v<NN>``: ``k`` is the step number, ``NN`` a pseudo-random value from the seed, the
    prompt, the copy of that prompt in the call and the sample index (temperature 0 ignores the seed). A
    solution of problem text ``t`` has ``3 + len(t) % 3`` steps (``steps`` overrides it); the last one holds a
    boxed answer and ends with EOS. Every call is recorded in ``calls`` as ``(prompts, config)``."""

    def __init__(self, steps: int | None = None):
        self.calls: list[tuple[list[str], SamplingConfig]] = []
        self.steps = steps

    def format_prompt(self, problem: str, system_prompt: str | None = None) -> str:
        return f"Q: {problem}\nA:"

    def _step(self, problem: str, k: int, value: int) -> tuple[str, bool]:
        last = k + 1 >= (self.steps or 3 + len(problem) % 3)
        text = f"step{k} v{value:02d}" + (f" so \\boxed{{{value % 3}}}" if last else "")
        return text, last

    def generate(self, prompts: list[str], config: SamplingConfig) -> list[list[Completion]]:
        self.calls.append((list(prompts), config))
        out = []
        seen: dict[str, int] = {}
        for prompt in prompts:
            copy = seen.get(prompt, 0)
            seen[prompt] = copy + 1
            problem, solution = prompt[len("Q: ") :].split("\nA:", 1)
            k = solution.count("\n\n")
            row = []
            for j in range(config.n):
                key = (prompt,) if config.temperature == 0 else (config.seed, prompt, copy, j)
                text, reason, step, tokens = "", "length", k, 0
                while True:
                    step_text, last = self._step(problem, step, _h(*key, step) % 100)
                    text += step_text
                    tokens += 2
                    if last:
                        reason = "eos"
                        break
                    text += "\n\n"
                    if config.stop:
                        reason = "stop"
                        break
                    step += 1
                    if tokens >= config.max_new_tokens:
                        break
                row.append(Completion(text, reason, len(prompt), tokens))
            out.append(row)
        return out


def step_value(step: str) -> float:
    """The score the :class:`ValueVerifier` gives a step: its ``vNN`` value as a probability."""
    return int(step.split(" v")[1][:2]) / 100


class ValueVerifier(Verifier):
    """P(step correct) = the step's value; counts one token per character scored."""

    step_separator = "\n"

    def __init__(self):
        self.tokens_processed = 0
        self.calls = 0

    def score(self, problems: list[str], solutions: list[list[str]]) -> list[list[float]]:
        self.calls += 1
        self.tokens_processed += sum(len(p) + sum(len(s) + 1 for s in sol) for p, sol in zip(problems, solutions))
        return [[step_value(s) for s in sol] for sol in solutions]
