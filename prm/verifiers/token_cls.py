"""Token-classification PRMs: ours and those trained with TRL's former PRMTrainer."""

from __future__ import annotations

import logging
from typing import Literal

import torch

from prm.data import build_example, decode_separator, read_separator
from prm.step_likelihood import add_step_likelihood, read_step_likelihood_weight, tied_output_embeddings

from .batching import DEFAULT_TOKEN_BUDGET, BatchedVerifier, Encoded, base_and_head, class_margin, right_pad
from .last_layer import hidden_at_positions
from .models import load_model_and_tokenizer, no_cache_kwargs

# How a solution is laid out for scoring: as in training, or as ProcessBench's TRL-PRM script (no BOS).
InputLayout = Literal["training", "processbench-script"]

logger = logging.getLogger(__name__)


class TokenClassificationVerifier(BatchedVerifier):
    """Score = P(class 1) at the last token of (step + separator), in exactly the layout used for training.

    The input is ``[bos] + prompt + (step + separator) * n`` as built by ``prm.data.build_example``; the
    separator defaults to the one saved in the model's config (``prm.data.read_separator``).

    ``input_layout="processbench-script"`` reproduces the input of ProcessBench's evaluation script for TRL PRMs
    in its current, fixed revision (QwenLM/ProcessBench pull request #12, commit 05769fa): problem, steps and
    separator tokenized without special tokens, the separator after every step and nothing after the problem,
    i.e. the training layout without the BOS token (identical to it for a tokenizer without one). The pull
    request's first revision (commit 04d347e) tokenized ``problem + separator`` and each ``step + "\n"`` as
    separate texts with special tokens, putting a BOS before every piece; its author replaced it as a bug, so it
    is not offered.

    A PRM trained with ``step_likelihood_weight`` (recorded in its config) adds that weight times its own
    log-likelihood of each step to the step's logit, as in training (``prm.step_likelihood``).
    """

    def __init__(
        self,
        model,
        tokenizer,
        step_separator: str = "\n",
        batch_token_budget: int = DEFAULT_TOKEN_BUDGET,
        max_batch_size: int | None = None,
        max_length: int | None = None,
        show_progress: bool = False,
        input_layout: InputLayout = "training",
    ):
        if input_layout not in ("training", "processbench-script"):
            raise ValueError(f"Unknown input_layout {input_layout!r}; use 'training' or 'processbench-script'")
        super().__init__(model, tokenizer, batch_token_budget, max_batch_size, max_length, show_progress)
        self.input_layout = input_layout
        self.step_separator = decode_separator(step_separator)
        self._separator_ids = tokenizer(self.step_separator, add_special_tokens=False)["input_ids"]
        if not self._separator_ids:
            raise ValueError(f"The step separator {self.step_separator!r} tokenizes to nothing")
        self._fast = base_and_head(model)
        self.step_likelihood_weight = read_step_likelihood_weight(model.config) if model is not None else None
        if self.step_likelihood_weight is not None:
            tied_output_embeddings(model)  # refuses an untied model now rather than at the first score

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        step_separator: str | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        trust_remote_code: bool = False,
        tokenizer=None,
        **kwargs,
    ) -> TokenClassificationVerifier:
        from transformers import AutoModelForTokenClassification

        model, tokenizer = load_model_and_tokenizer(
            AutoModelForTokenClassification, name_or_path, device, dtype, trust_remote_code, tokenizer
        )
        if step_separator is None:
            step_separator = read_separator(name_or_path)
            logger.info("Step separator %r (from the model's config)", step_separator)
        return cls(model, tokenizer, step_separator, **kwargs)

    @classmethod
    def from_model(cls, model, tokenizer, step_separator: str | None = None, **kwargs) -> TokenClassificationVerifier:
        """Wrap an in-memory model, e.g. the one being trained (the separator defaults to its config's)."""
        if step_separator is None:
            step_separator = read_separator(model.config)
        return cls(model, tokenizer, step_separator, **kwargs)

    def encode(self, problems: list[str], solutions: list[list[str]]) -> list[Encoded]:
        flat = list(problems) + [step for steps in solutions for step in steps]
        flat_ids = self.tokenizer(flat, add_special_tokens=False)["input_ids"] if flat else []
        # The benchmark script's fixed revision adds no special tokens; training (like TRL) starts with BOS.
        bos = None if self.input_layout == "processbench-script" else self.tokenizer.bos_token_id
        out = []
        cursor = len(problems)
        for i, steps in enumerate(solutions):
            steps_ids = flat_ids[cursor : cursor + len(steps)]
            cursor += len(steps)
            ex = build_example(flat_ids[i], steps_ids, None, self._separator_ids, bos, self.max_length)
            out.append(Encoded(ex["input_ids"], ex["step_ends"], len(steps), ex["step_index"]))
        return out

    def _group_margins(self, encoded: list[Encoded], group: list[int]) -> list[torch.Tensor]:
        if self.step_likelihood_weight is None:
            return super()._group_margins(encoded, group)
        # The step likelihood reads every token's final hidden state, so no head-only shortcut here.
        ids = right_pad([encoded[i].input_ids for i in group], self.pad_token_id).to(self.device)
        step_index = right_pad([encoded[i].step_index for i in group], 0).to(self.device)
        if self._fast is not None:
            body, head = self._fast
            hidden = body(input_ids=ids, **no_cache_kwargs(self.model)).last_hidden_state
            logits = head(hidden)
        else:  # wrapped models (PEFT): every layer's states come back, the last one is used
            out = self.model(input_ids=ids, output_hidden_states=True, **no_cache_kwargs(self.model))
            hidden, logits = out.hidden_states[-1], out.logits
        embeddings = tied_output_embeddings(self.model)
        logits = add_step_likelihood(logits, hidden, ids, step_index, embeddings, self.step_likelihood_weight)
        return [class_margin(logits[row, encoded[i].positions]).float().cpu() for row, i in enumerate(group)]

    def _margins(self, input_ids: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        if self._fast is not None:
            body, head = self._fast
            # The head (and the last layer, where supported) only runs where a step is scored; dropout is off in
            # eval mode, so this is the same math as the full forward.
            logits = head(hidden_at_positions(body, input_ids, rows, positions, **no_cache_kwargs(self.model)))
        else:
            logits = self.model(input_ids=input_ids).logits[rows, positions]
        return class_margin(logits)
