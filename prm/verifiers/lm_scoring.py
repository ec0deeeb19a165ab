"""Pieces shared by the verifiers that read scores out of a causal language model or a text template."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .batching import BatchedVerifier, Encoded
from .last_layer import hidden_at_positions
from .models import load_model_and_tokenizer, no_cache_kwargs


def token_at_chars(offsets: Sequence[tuple[int, int]], char_positions: Sequence[int]) -> list[int]:
    """Index of the token covering each character position (offsets as returned by a fast tokenizer)."""
    starts = [start for start, _ in offsets]
    out = []
    for c in char_positions:
        i = bisect.bisect_right(starts, c) - 1
        while i > 0 and offsets[i][0] == offsets[i][1]:  # skip zero-width (special) tokens
            i -= 1
        out.append(max(i, 0))
    return out


def truncated_encoding(input_ids: list[int], positions: list[int], num_steps: int, max_length: int | None) -> Encoded:
    """Keep the steps whose score position fits in the context; drop the tokens after the last kept one.

    Nothing after the last scored position can influence a causal model's scores, so it is never run.
    """
    if max_length is not None:
        positions = [p for p in positions if p < max_length]
    if not positions:
        return Encoded([], [], num_steps)
    return Encoded(list(input_ids[: positions[-1] + 1]), positions, num_steps)


def single_token_id(tokenizer, text: str) -> int:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError(f"{text!r} tokenizes to nothing")
    return ids[-1]


def candidate_margins(
    model, input_ids: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor, good_id: int, bad_id: int
) -> torch.Tensor:
    """``logit(good) - logit(bad)`` for the next token after each (row, position).

    Only the two candidate rows of the output layer are applied, and only at the scored positions, instead
    of a full-vocabulary projection of every token.
    """
    from transformers import PreTrainedModel

    body = getattr(model, model.base_model_prefix, None) if isinstance(model, PreTrainedModel) else None
    head = model.get_output_embeddings() if body is not None else None
    cap = getattr(model.config, "final_logit_softcapping", None)
    if body is None or body is model or not isinstance(head, torch.nn.Linear):
        logits = model(input_ids=input_ids).logits[rows, positions]
        picked = logits[:, [good_id, bad_id]].float()
        if cap:
            picked = torch.tanh(picked / cap) * cap
        return picked[:, 0] - picked[:, 1]
    hidden = hidden_at_positions(body, input_ids, rows, positions, **no_cache_kwargs(model))
    ids = torch.tensor([good_id, bad_id], device=hidden.device)
    bias = head.bias[ids] if head.bias is not None else None
    return margins_from_hidden(hidden, head.weight[ids], bias, cap)


def margins_from_hidden(
    hidden: torch.Tensor, rows: torch.Tensor, bias: torch.Tensor | None = None, softcap: float | None = None
) -> torch.Tensor:
    """``logit(good) - logit(bad)`` from final hidden states ``[N, H]`` and the two output-layer rows ``[2, H]``
    (good first), with the model's final-logit soft-capping if it has one."""
    picked = F.linear(hidden, rows.to(hidden.dtype), None if bias is None else bias.to(hidden.dtype)).float()
    if softcap:
        picked = torch.tanh(picked / softcap) * softcap
    return picked[:, 0] - picked[:, 1]


class CandidateTokenVerifier(BatchedVerifier):
    """A causal-LM PRM read at each scored position as ``logit(good) - logit(bad)`` of the next token.

    Subclasses build the text and its scored positions (``encode``) and choose the two candidate tokens
    (``_set_candidates``).
    """

    good_id: int
    bad_id: int

    @classmethod
    def from_pretrained(
        cls, name_or_path: str, device=None, dtype=None, trust_remote_code: bool = False, tokenizer=None, **kwargs
    ):
        from transformers import AutoModelForCausalLM

        model, tokenizer = load_model_and_tokenizer(
            AutoModelForCausalLM, name_or_path, device, dtype, trust_remote_code, tokenizer
        )
        return cls(model, tokenizer, **kwargs)

    def _set_candidates(self, good_id: int, bad_id: int, good_token: str, bad_token: str) -> None:
        if good_id == bad_id:
            raise ValueError(f"Candidates {good_token!r} and {bad_token!r} map to the same token")
        self.good_id, self.bad_id = good_id, bad_id

    def _margins(self, input_ids: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return candidate_margins(self.model, input_ids, rows, positions, self.good_id, self.bad_id)
