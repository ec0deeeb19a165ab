"""Causal-LM PRMs that read a tag token after each step (Math-Shepherd style).

Input: ``problem + " " + "step_1 ки\\nstep_2 ки\\n..."``; at each tag the model's next-token logits for the
"good" and "bad" candidates (``+`` / ``-``) give P(correct) = softmax over the two candidates.
"""

from __future__ import annotations

from .batching import DEFAULT_TOKEN_BUDGET, Encoded
from .lm_scoring import CandidateTokenVerifier, single_token_id, token_at_chars, truncated_encoding


class StepTagVerifier(CandidateTokenVerifier):
    def __init__(
        self,
        model,
        tokenizer,
        step_tag: str = "ки",
        good_token: str = "+",
        bad_token: str = "-",
        prompt_separator: str = " ",
        step_separator: str = "\n",
        batch_token_budget: int = DEFAULT_TOKEN_BUDGET,
        max_batch_size: int | None = None,
        max_length: int | None = None,
        show_progress: bool = False,
    ):
        if not step_tag:
            raise ValueError("step_tag must be a non-empty string")
        super().__init__(model, tokenizer, batch_token_budget, max_batch_size, max_length, show_progress)
        self.step_tag = step_tag
        self.prompt_separator = prompt_separator
        self.step_separator = step_separator
        self._set_candidates(*self._candidate_ids(good_token, bad_token), good_token, bad_token)

    def _candidate_ids(self, good: str, bad: str) -> tuple[int, int]:
        # Math-Shepherd reads the candidates as they appear after a space ("+ -" tokenized together), which is
        # how a sentencepiece vocabulary continues the tag; fall back to the bare tokens otherwise.
        pair = self.tokenizer(f"{good} {bad}", add_special_tokens=False)["input_ids"]
        if len(pair) == 2:
            return pair[0], pair[1]
        return single_token_id(self.tokenizer, good), single_token_id(self.tokenizer, bad)

    def build_text(self, problem: str, steps: list[str]) -> tuple[str, list[int]]:
        """The model input and the character position of each step's tag."""
        text = problem + self.prompt_separator
        tag_chars = []
        for j, step in enumerate(steps):
            text += step + " "
            tag_chars.append(len(text))
            text += self.step_tag + (self.step_separator if j < len(steps) - 1 else "")
        return text, tag_chars

    def encode(self, problems: list[str], solutions: list[list[str]]) -> list[Encoded]:
        built = [self.build_text(p, s) for p, s in zip(problems, solutions)]
        enc = self.tokenizer([t for t, _ in built], return_offsets_mapping=True) if built else {"input_ids": []}
        out = []
        for i, (_, tag_chars) in enumerate(built):
            positions = token_at_chars(enc["offset_mapping"][i], tag_chars)
            out.append(truncated_encoding(enc["input_ids"][i], positions, len(tag_chars), self.max_length))
        return out
