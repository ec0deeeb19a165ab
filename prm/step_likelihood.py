"""A step's log-likelihood under the PRM itself, added to the step's logit (``PRMConfig.step_likelihood_weight``).

A token-classification PRM built on a language model reads each step through one vector, the hidden state at the
step's last token. Whether a step is what the model itself would have written is, however, in the next-token
predictions at the step's own tokens: a model that computes ``13 * 4 = 52`` assigns ``49`` a low probability, but
turning that into a feature at the end of the line costs the classifier a comparison it learns slowly (the demo's
PRM learned parity checks instead). With tied input and output embeddings the token-classification model still
holds its language-model head, so the score of step ``k`` can be

    logit_k = head(h_end_k) + weight * sum_{t in step k} log p(token_t | tokens before t)

with no new parameter: the sum runs over the step's tokens and its separator, and the weight is recorded in the
saved config (:data:`CONFIG_KEY`) so every verifier scores the way the model was trained.

``step_index`` marks which step each token belongs to: 0 for BOS, prompt and padding, ``k`` (1-based) for the
tokens of step ``k`` and its separator (``prm.data.build_example`` writes it).
"""

from __future__ import annotations

import json
import os

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

CONFIG_KEY = "prm_step_likelihood_weight"


def read_step_likelihood_weight(model_path_or_config) -> float | None:
    """The weight a model was trained with (None: a plain token classifier), from its config or its folder."""
    config = model_path_or_config
    if isinstance(config, (str, os.PathLike)):
        config_file = os.path.join(config, "config.json")
        if not os.path.isfile(config_file):
            return None  # a hub name: the verifier reads the weight from the loaded model's config
        with open(config_file, encoding="utf-8") as f:
            value = json.load(f).get(CONFIG_KEY)
    else:
        value = getattr(config, CONFIG_KEY, None)
    return float(value) if value else None


def tied_output_embeddings(model) -> torch.Tensor:
    """The output (language-model) embeddings of a tied-embedding model: its input embeddings.

    Raises ``ValueError`` for untied models, whose token-classification checkpoint has no language-model head.
    """
    config = model.config
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    if not getattr(text_config, "tie_word_embeddings", False):
        raise ValueError(
            "step_likelihood_weight needs a model with tied input and output embeddings (tie_word_embeddings: "
            f"true); {getattr(config, '_name_or_path', 'this model')} has separate ones, which a token-classification "
            "model does not keep"
        )
    return model.get_input_embeddings().weight


# Rows of [rows, vocab] logits computed at once: 2**26 float32 values (256 MiB) whatever the vocabulary.
LOGIT_CHUNK_VALUES = 2**26


def _chosen_log_probs(hidden: torch.Tensor, targets: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
    logits = (hidden @ embeddings.T).float()
    return logits.gather(1, targets[:, None]).squeeze(1) - logits.logsumexp(-1)


def token_log_likelihoods(
    hidden: torch.Tensor, input_ids: torch.Tensor, embeddings: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """``[B, T]`` log-probability of each token given the ones before it, where ``mask`` is true (0 elsewhere).

    ``hidden`` is the final (normalised) hidden state ``[B, T, H]``; only positions whose next token is masked
    in go through the output embeddings. Beyond :data:`LOGIT_CHUNK_VALUES` the ``[N, vocab]`` logits are made in
    chunks, each recomputed in backward instead of kept: with a 150k vocabulary, 16k scored tokens would otherwise
    hold 10 GB of logits for the backward pass.
    """
    scored = mask[:, 1:]
    rows = hidden[:, :-1][scored]
    targets = input_ids[:, 1:][scored]
    size = max(1, LOGIT_CHUNK_VALUES // embeddings.shape[0])
    recompute = torch.is_grad_enabled() and rows.shape[0] > size
    pieces = []
    for start in range(0, rows.shape[0], size):
        args = (rows[start : start + size], targets[start : start + size], embeddings)
        pieces.append(
            checkpoint(_chosen_log_probs, *args, use_reentrant=False) if recompute else _chosen_log_probs(*args)
        )
    chosen = torch.cat(pieces) if pieces else rows.new_zeros(0, dtype=torch.float32)
    out = torch.zeros(scored.shape, dtype=chosen.dtype, device=chosen.device)
    out[scored] = chosen
    return F.pad(out, (1, 0))


def running_step_sums(values: torch.Tensor, step_index: torch.Tensor) -> torch.Tensor:
    """At each token of a step, the sum of ``values`` from the step's first token up to it (0 outside steps).

    A step is a run of equal, positive ``step_index``; at the step's last token this is the step's total.
    """
    inside = step_index > 0
    values = values * inside
    cumulative = values.cumsum(1)
    previous = F.pad(step_index[:, :-1], (1, 0), value=-1)
    starts_run = inside & (step_index != previous)
    positions = torch.arange(step_index.shape[1], device=step_index.device).expand_as(step_index)
    run_start = torch.where(starts_run, positions, torch.zeros_like(positions)).cummax(1).values
    before_run = cumulative.gather(1, run_start) - values.gather(1, run_start)
    return (cumulative - before_run) * inside


def add_step_likelihood(
    logits: torch.Tensor,
    hidden: torch.Tensor,
    input_ids: torch.Tensor,
    step_index: torch.Tensor,
    embeddings: torch.Tensor,
    weight: float,
) -> torch.Tensor:
    """Two-class token logits ``[B, T, 2]`` with ``weight`` x the running step log-likelihood added to class 1."""
    if logits.shape[-1] != 2:
        raise ValueError(f"step_likelihood_weight needs a 2-label head, got {logits.shape[-1]} labels")
    step_ll = running_step_sums(token_log_likelihoods(hidden, input_ids, embeddings, step_index > 0), step_index)
    shift = weight * step_ll.to(logits.dtype)
    return logits + torch.stack([torch.zeros_like(shift), shift], dim=-1)
