"""Length-bucketed batching shared by every verifier.

Solutions are encoded once, grouped into batches of similar length under a token budget (padding is the main
waste when scoring thousands of solutions of very different lengths), scored, and returned in input order.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from prm.data.tokenizer import pad_token_id

from .base import Verifier
from .models import model_device

logger = logging.getLogger(__name__)

DEFAULT_TOKEN_BUDGET = 32768


@dataclass
class Encoded:
    """One solution ready for the model: token ids and the positions whose output scores each kept step."""

    input_ids: list[int]
    positions: list[int]
    num_steps: int
    step_index: list[int] | None = None  # each token's step, for PRMs that add a step likelihood

    @property
    def truncated(self) -> bool:
        return len(self.positions) < self.num_steps


@dataclass
class StepScores:
    """Scores of one solution.

    ``scores[j]`` is P(step j correct). ``margins[j]`` is the log-odds behind it (class-1 logit minus class-0
    logit, or "+" minus "-"): ``margin > 0`` is exactly ``argmax == 1``, which is how the ProcessBench script
    judges TRL PRMs. When the solution does not fit the model's context only the leading steps that fit are
    scored: ``len(scores) < num_steps`` and ``truncated`` is True.
    """

    scores: list[float]
    margins: list[float]
    num_steps: int

    @property
    def truncated(self) -> bool:
        return len(self.scores) < self.num_steps


# A row joins a batch only if it is at least this fraction of the batch's longest row, so padding stays under 10%
# of any batch. The token budget alone lets one batch span very different lengths (the first 48 solutions of
# ProcessBench/gsm8k fit one 32k-token batch, 680 tokens down to 150), and that padding cost a 102M model on CPU
# as much time as the benchmark's unsorted batches of 24 (measured with benchmarks/processbench_throughput.py).
MIN_LENGTH_FRACTION = 0.9


def length_batches(
    lengths: Sequence[int],
    token_budget: int,
    max_batch_size: int | None = None,
    min_length_fraction: float = MIN_LENGTH_FRACTION,
) -> list[list[int]]:
    """Group indices into batches of similar length whose padded size (rows x longest) stays within the budget.

    Rows are taken longest first; a batch is closed when the next row would exceed the budget or
    ``max_batch_size``, or is shorter than ``min_length_fraction`` of the batch's longest row (which bounds the
    padding). Longest first, so an out-of-memory error shows up on the first batch rather than at the end of a long
    run. A sequence longer than the budget gets a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        # Sorted descending, so the first row of a batch is its longest.
        longest = lengths[current[0]] if current else lengths[i]
        full = max_batch_size is not None and len(current) >= max_batch_size
        too_short = lengths[i] < min_length_fraction * longest
        if current and (full or too_short or (len(current) + 1) * longest > token_budget):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def right_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> torch.Tensor:
    width = max(len(s) for s in sequences)
    out = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return out


def class_margin(logits: torch.Tensor) -> torch.Tensor:
    """Log-odds of class 1 from per-position class logits ``[N, C]``.

    For two classes this is ``logit_1 - logit_0``, whose sign is exactly the argmax decision. One logit is read
    as a binary (sigmoid) head. With more classes, class 1 against all others.
    """
    logits = logits.float()
    num_classes = logits.shape[-1]
    if num_classes == 2:
        return logits[:, 1] - logits[:, 0]
    if num_classes == 1:
        return logits[:, 0]
    others = torch.cat([logits[:, :1], logits[:, 2:]], dim=-1)
    return logits[:, 1] - torch.logsumexp(others, dim=-1)


def margins_to_probs(margins: torch.Tensor) -> list[float]:
    # float64: a positive float32 margin never rounds to exactly 0.5, so ``score > 0.5`` agrees with argmax.
    return torch.sigmoid(margins.double()).tolist()


def context_limit(model, tokenizer, max_length: int | None) -> int | None:
    """The longest input the model accepts: an explicit ``max_length``, else the model's position limit."""
    if max_length is not None:
        return max_length
    config = getattr(model, "config", None)
    limits = [getattr(config, "max_position_embeddings", None)]
    tok_max = getattr(tokenizer, "model_max_length", None)
    if tok_max is not None and tok_max < 10**9:  # transformers uses a huge sentinel when unknown
        limits.append(tok_max)
    limits = [x for x in limits if isinstance(x, int) and x > 0]
    return min(limits) if limits else None


class EncodedVerifier(Verifier):
    """A verifier that encodes solutions (``encode``) and scores the encodings group by group.

    Subclasses implement ``encode`` (one ``Encoded`` per solution), ``_groups`` (the forward passes: groups of the
    indices of solutions with positions to score) and ``_group_margins`` (each solution's log-odds of "correct" at
    its positions). Solutions with nothing to score get no scores; the tokens run are counted, progress is shown
    with ``show_progress``, and solutions cut short by the context are reported.
    """

    max_length: int | None = None
    show_progress: bool = False
    progress_desc: str | None = None

    @abstractmethod
    def encode(self, problems: list[str], solutions: list[list[str]]) -> list[Encoded]:
        """Token ids and score positions for each solution, truncated to the model's context."""

    @abstractmethod
    def _groups(self, encoded: list[Encoded], runnable: list[int]) -> list[list[int]]:
        """The indices in ``runnable`` grouped into forward passes."""

    @abstractmethod
    def _group_margins(self, encoded: list[Encoded], group: list[int]) -> list[torch.Tensor]:
        """The step log-odds of each solution of ``group``, in order."""

    def score(self, problems: list[str], solutions: list[list[str]]) -> list[list[float]]:
        return [r.scores for r in self.score_with_info(problems, solutions)]

    def score_with_info(self, problems: list[str], solutions: list[list[str]]) -> list[StepScores]:
        """Like ``score`` but with log-odds and truncation information per solution."""
        if len(problems) != len(solutions):
            raise ValueError(f"{len(problems)} problems but {len(solutions)} solutions")
        return self.score_encoded(self.encode(problems, solutions))

    def score_encoded(self, encoded: list[Encoded]) -> list[StepScores]:
        results = [StepScores([], [], enc.num_steps) for enc in encoded]
        runnable = [i for i, enc in enumerate(encoded) if enc.positions]
        progress = None
        if self.show_progress:
            from tqdm.auto import tqdm

            progress = tqdm(total=len(runnable), desc=self.progress_desc or "Scoring", unit="solution")
        try:
            for group in self._groups(encoded, runnable):
                for i, margins in zip(group, self._group_margins(encoded, group)):
                    results[i] = StepScores(margins_to_probs(margins), margins.tolist(), encoded[i].num_steps)
                self.tokens_processed += sum(len(encoded[i].input_ids) for i in group)
                if progress is not None:
                    progress.update(len(group))
        finally:
            if progress is not None:
                progress.close()
        warn_truncated(results, self.max_length)
        return results


class BatchedVerifier(EncodedVerifier):
    """A verifier that encodes solutions, batches them by length and scores chosen positions.

    Subclasses implement ``encode`` (one ``Encoded`` per solution) and ``_margins`` (log-odds of "correct" at
    the given (row, position) pairs of a right-padded batch). Right padding with a causal model means the real
    tokens never attend to padding, so a solution's scores do not depend on what it is batched with.
    """

    model: torch.nn.Module
    tokenizer: object
    batch_token_budget: int = DEFAULT_TOKEN_BUDGET
    max_batch_size: int | None = None
    max_length: int | None = None
    show_progress: bool = False
    progress_desc: str | None = None

    def __init__(
        self,
        model,
        tokenizer,
        batch_token_budget: int = DEFAULT_TOKEN_BUDGET,
        max_batch_size: int | None = None,
        max_length: int | None = None,
        show_progress: bool = False,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_token_budget = batch_token_budget
        self.max_batch_size = max_batch_size
        self.max_length = context_limit(model, tokenizer, max_length)
        self.show_progress = show_progress
        self.tokens_processed = 0

    @property
    def device(self) -> torch.device:
        return model_device(self.model)

    @property
    def pad_token_id(self) -> int:
        return pad_token_id(self.tokenizer)

    @abstractmethod
    def _margins(self, input_ids: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Log-odds of "step correct" at ``input_ids[rows, positions]`` (one forward pass for the batch)."""

    def _groups(self, encoded: list[Encoded], runnable: list[int]) -> list[list[int]]:
        lengths = [len(encoded[i].input_ids) for i in runnable]
        return [
            [runnable[j] for j in b] for b in length_batches(lengths, self.batch_token_budget, self.max_batch_size)
        ]

    def _group_margins(self, encoded: list[Encoded], group: list[int]) -> list[torch.Tensor]:
        ids = right_pad([encoded[i].input_ids for i in group], self.pad_token_id).to(self.device)
        rows = torch.tensor([r for r, i in enumerate(group) for _ in encoded[i].positions], dtype=torch.long)
        pos = torch.tensor([p for i in group for p in encoded[i].positions], dtype=torch.long)
        margins = self._margins(ids, rows.to(self.device), pos.to(self.device)).float().cpu()
        return list(margins.split([len(encoded[i].positions) for i in group]))

    @torch.inference_mode()
    def score_encoded(self, encoded: list[Encoded]) -> list[StepScores]:
        was_training = self.model.training
        self.model.eval()
        try:
            return super().score_encoded(encoded)
        finally:
            self.model.train(was_training)


def base_and_head(model) -> tuple[torch.nn.Module, torch.nn.Module] | None:
    """The transformer body and the output layer of a Hugging Face model, when both can be reached directly.

    Lets verifiers run the output layer on the few positions that carry a step score instead of every token.
    Returns None for wrapped models (PEFT, DeepSpeed), which then go through their full forward.
    """
    from transformers import PreTrainedModel

    if not isinstance(model, PreTrainedModel):
        return None
    body = getattr(model, model.base_model_prefix, None)
    if body is None or body is model:
        return None
    for name in ("score", "classifier"):
        head = getattr(model, name, None)
        if isinstance(head, torch.nn.Linear):
            return body, head
    return None


def warn_truncated(results, max_length: int | None) -> None:
    """Say how many solutions did not fit the model's context (their trailing steps were not scored)."""
    truncated = sum(r.truncated for r in results)
    if truncated:
        logger.warning(
            "%d of %d solutions exceed the model context (%s tokens): only their leading steps were scored",
            truncated,
            len(results),
            max_length,
        )
