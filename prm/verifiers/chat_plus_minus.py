"""RLHFlow-style PRMs: each step is a user turn and the assistant answers ``+`` (correct) or ``-``.

The reference protocol asks the model one step at a time (a growing conversation, one call per step). Here the
whole conversation, with every assistant answer set to ``+`` as in that protocol, is run once: the causal mask
makes the logits at the start of assistant turn k identical to those of the k-th per-step call.

The problem and the first step share the first user turn, joined by ``problem_step_join``. The default, one space,
is the model authors' own usage: RLHFlow's evaluation (the conversation format in the ``math/`` README of
RLHFlow/RLHF-Reward-Modeling) and search-and-learn's RLHFlow PRM both write ``question + " " + step``.
ProcessBench's script for these models joins them with a blank line instead: pass ``problem_step_join="\\n\\n"``
to reproduce its numbers. Chat templates receive a fixed ``date_string`` (RLHFlow's Llama 3.1 template prints a
date), so scores never depend on the day.
"""

from __future__ import annotations

import logging

from prm.data.tokenizer import DEFAULT_DATE_STRING, render_chat

from .batching import DEFAULT_TOKEN_BUDGET, Encoded
from .lm_scoring import CandidateTokenVerifier, single_token_id, token_at_chars, truncated_encoding

logger = logging.getLogger(__name__)

RLHFLOW_PROBLEM_STEP_JOIN = " "  # how the model authors join the problem and the first step


class ChatPlusMinusVerifier(CandidateTokenVerifier):
    def __init__(
        self,
        model,
        tokenizer,
        good_token: str = "+",
        bad_token: str = "-",
        problem_step_join: str = RLHFLOW_PROBLEM_STEP_JOIN,
        date_string: str = DEFAULT_DATE_STRING,
        batch_token_budget: int = DEFAULT_TOKEN_BUDGET,
        max_batch_size: int | None = None,
        max_length: int | None = None,
        show_progress: bool = False,
    ):
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError("chat-plus-minus verifiers need a tokenizer with a chat template")
        super().__init__(model, tokenizer, batch_token_budget, max_batch_size, max_length, show_progress)
        self.good_token = good_token
        self.problem_step_join = problem_step_join
        self.date_string = date_string
        self.step_separator = problem_step_join
        self._set_candidates(
            single_token_id(tokenizer, good_token), single_token_id(tokenizer, bad_token), good_token, bad_token
        )
        self._warned_boundary = False

    def messages(self, problem: str, steps: list[str], upto: int | None = None) -> list[dict[str, str]]:
        """The conversation through step ``upto`` (all steps if None), each step answered with ``+``."""
        msgs: list[dict[str, str]] = []
        for j, step in enumerate(steps[:upto]):
            msgs.append({"role": "user", "content": problem + self.problem_step_join + step if j == 0 else step})
            msgs.append({"role": "assistant", "content": self.good_token})
        return msgs

    def _render(self, messages, generation_prompt: bool) -> str:
        return render_chat(self.tokenizer, messages, self.date_string, add_generation_prompt=generation_prompt)

    def build_text(self, problem: str, steps: list[str]) -> tuple[str, list[int]]:
        """The full conversation and, per step, the character where the assistant's answer begins."""
        msgs = self.messages(problem, steps)
        full = self._render(msgs, False)
        answer_chars = []
        for k in range(len(steps)):
            prefix = self._render(msgs[: 2 * k + 1], True)
            if not full.startswith(prefix):
                raise ValueError(
                    "The chat template renders a conversation differently from its prefixes, so steps cannot "
                    "be scored in one pass; this template is not supported by the chat-plus-minus verifier"
                )
            answer_chars.append(len(prefix))
        return full, answer_chars

    def encode(self, problems: list[str], solutions: list[list[str]]) -> list[Encoded]:
        built = [self.build_text(p, s) for p, s in zip(problems, solutions)]
        texts = [t for t, _ in built]
        enc = self.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True) if built else {}
        out = []
        for i, (_, answer_chars) in enumerate(built):
            offsets = enc["offset_mapping"][i]
            answer_tokens = token_at_chars(offsets, answer_chars)
            if not self._warned_boundary and any(offsets[t][0] != c for t, c in zip(answer_tokens, answer_chars)):
                self._warned_boundary = True
                logger.warning("A token spans the end of a generation prompt: scores may differ from per-step calls")
            # The logits that predict the answer token sit one position before it.
            positions = [t - 1 for t in answer_tokens]
            out.append(truncated_encoding(enc["input_ids"][i], positions, len(answer_chars), self.max_length))
        return out
