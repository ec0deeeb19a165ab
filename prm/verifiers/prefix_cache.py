"""Incremental scoring of growing solutions for causal token-classification PRMs (used by tree search).

A causal PRM's score for step ``j`` depends only on the tokens up to the end of step ``j``. In beam search and
DVTS every beam grows by one step per iteration, so re-scoring the whole prefix each time makes verifier cost
quadratic in the number of steps. Here each node of the search tree keeps the verifier's key/value states and
only a new step's tokens go through the model.

Exactness: the token layout is that of ``prm.data.build_example`` (``[bos] + prompt + (step + separator) * n``
with the prompt and each step tokenized separately), so concatenating per-step pieces gives exactly the ids of
full re-scoring, and the scores equal ``TokenClassificationVerifier.score`` up to floating-point noise.

Memory: a node stores only the key/value states of its own new tokens plus a link to its parent; a prefix is
assembled when a node is expanded. ``release(keep)`` drops every node that is neither kept nor an ancestor of
a kept node, so only the live beams' paths stay in memory.

Batching: every new step of one ``score`` call goes through the model in one forward pass (per chunk of
``max_batch_size`` rows), whatever node it continues: each row's prefix is gathered into a left-padded batch
cache (see ``PrefixCachedScorer._extend``). One pass per parent instead made the many small calls slower than
full re-scoring despite far fewer tokens. Solutions longer than the model's context are not
truncated here (tree search bounds them with its token budget).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

import torch

from prm.data.tokenizer import pad_token_id
from prm.step_likelihood import read_step_likelihood_weight

from .batching import base_and_head, class_margin, margins_to_probs, right_pad
from .models import cache_argument, model_device
from .scoring import ScoreRequest, ScoreResult

_ROOT = "__root__"


@dataclass
class _Node:
    parent: _Node | None
    # Keys and values of this node's own new positions only, all layers in one tensor
    # ``[layers, 2 (key, value), kv_heads, new positions, head_dim]`` (None: no positions of its own).
    kv: torch.Tensor | None
    length: int  # total tokens from the start of the sequence
    scores: list[float] = field(default_factory=list)  # one per step covered by this node's state

    @property
    def num_steps(self) -> int:
        return len(self.scores)


class PrefixCachedScorer:
    """Scores tree-search nodes incrementally with a token-classification PRM (see the module docstring).

    Build it from a ``TokenClassificationVerifier`` (:meth:`from_verifier`) or from a plain
    ``AutoModelForTokenClassification``, its tokenizer and the step separator it was trained with.
    ``tokens_processed`` counts the tokens that actually went through the model (padding excluded).
    """

    def __init__(self, model, tokenizer, step_separator: str, max_batch_size: int = 64):
        if read_step_likelihood_weight(model.config) is not None:
            raise ValueError(
                "This PRM adds its step likelihood to each score (step_likelihood_weight), which the prefix cache "
                "does not compute; score it with TokenClassificationVerifier (search: prefix_cache false)"
            )
        fast = base_and_head(model)
        if fast is None:
            raise ValueError(
                f"{type(model).__name__} does not expose a transformer body and a linear head; prefix caching needs "
                "a plain Hugging Face token-classification model (merge PEFT adapters first)"
            )
        self.model = model
        self.body, self.head = fast
        self.tokenizer = tokenizer
        self.step_separator = step_separator
        self.max_batch_size = max_batch_size
        self.tokens_processed = 0
        self._separator_ids = tokenizer(step_separator, add_special_tokens=False)["input_ids"]
        if not self._separator_ids:
            raise ValueError(f"The step separator {step_separator!r} tokenizes to nothing")
        self._cache_kwarg = cache_argument(self.body)
        self._nodes: dict[Hashable, _Node] = {}

    @classmethod
    def from_verifier(cls, verifier, max_batch_size: int = 64) -> PrefixCachedScorer:
        return cls(verifier.model, verifier.tokenizer, verifier.step_separator, max_batch_size=max_batch_size)

    @property
    def device(self) -> torch.device:
        return model_device(self.model)

    @property
    def num_nodes(self) -> int:
        return len(self._nodes)

    def release(self, keep: Iterable[Hashable]) -> None:
        """Forget every node that is not in ``keep`` and not on the path to a kept node."""
        needed: set[int] = set()
        for key in keep:
            node = self._nodes.get(key)
            while node is not None and id(node) not in needed:
                needed.add(id(node))
                node = node.parent
        self._nodes = {k: n for k, n in self._nodes.items() if id(n) in needed}

    def clear(self) -> None:
        self._nodes = {}

    def _ids(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []

    @torch.inference_mode()
    def score(self, requests: list[ScoreRequest]) -> list[ScoreResult]:
        """Scores of all steps of each request, running only the tokens not covered by its parent's state.

        All new tokens of the call go through the model together (chunks of ``max_batch_size`` rows, grouped by
        length), whatever node each request continues: one forward pass for new problems' prompts, one per chunk.
        """
        self.model.eval()
        new_problems = dict.fromkeys(r.problem for r in requests if r.parent is None)
        missing = [p for p in new_problems if (_ROOT, p) not in self._nodes]
        if missing:
            bos = self.tokenizer.bos_token_id
            prompts = [([bos] if bos is not None else []) + ids for ids in self._ids(missing)]
            for start in range(0, len(missing), self.max_batch_size):
                chunk = [_Row(None, ids, [], len(ids)) for ids in prompts[start : start + self.max_batch_size]]
                for problem, (node, _) in zip(missing[start:], self._extend(chunk)):
                    self._nodes[(_ROOT, problem)] = node

        rows, keeps = [], []
        for r in requests:
            parent = self._nodes.get((_ROOT, r.problem) if r.parent is None else r.parent)
            if parent is None:
                raise KeyError(f"Unknown or released parent node {r.parent!r}")
            row, keep = self._row(parent, r)
            rows.append(row)
            keeps.append(keep)
        out: list[tuple[_Node, list[float]] | None] = [None] * len(requests)
        runnable = []
        for i, row in enumerate(rows):
            if row.ids:
                runnable.append(i)
            else:  # no new step (e.g. the generator produced an empty one): the state is the parent's
                out[i] = (_Node(row.parent, None, row.parent.length), [])
        # Similar prefix and new lengths share a chunk, so little padding goes through the model.
        runnable.sort(key=lambda i: (rows[i].parent.length, len(rows[i].ids)))
        for start in range(0, len(runnable), self.max_batch_size):
            chunk = runnable[start : start + self.max_batch_size]
            for i, done in zip(chunk, self._extend([rows[i] for i in chunk])):
                out[i] = done

        results = []
        for r, row, keep, (node, scores) in zip(requests, rows, keeps, out):
            all_scores = row.parent.scores + scores
            node.scores = all_scores[:keep]
            if r.node is not None:
                self._nodes[r.node] = node
            results.append(ScoreResult(all_scores, len(row.ids)))
        return results

    def _row(self, parent: _Node, request: ScoreRequest) -> tuple[_Row, int]:
        """The new tokens of ``request`` after ``parent``'s state, and the number of steps its node keeps."""
        if len(request.steps) < parent.num_steps:
            raise ValueError(f"A request has {len(request.steps)} steps but its parent covers {parent.num_steps}")
        keep = len(request.steps) if request.keep_steps is None else request.keep_steps
        if keep < parent.num_steps or keep > len(request.steps):
            raise ValueError(f"keep_steps={keep} outside [{parent.num_steps}, {len(request.steps)}]")
        ids: list[int] = []
        step_ends: list[int] = []
        keep_len = 0
        for j, step_ids in enumerate(self._ids(request.steps[parent.num_steps :])):
            ids.extend(step_ids + self._separator_ids)
            step_ends.append(len(ids) - 1)
            if parent.num_steps + j + 1 == keep:
                keep_len = len(ids)
        return _Row(parent, ids, step_ends, keep_len), keep

    def _extend(self, rows: list[_Row]) -> list[tuple[_Node, list[float]]]:
        """One forward pass over every row's new tokens, each after its own parent's prefix.

        Layout of the batch: slot ``t < P`` (``P`` = longest prefix) holds the prefix keys/values, left-padded,
        and slot ``P + q`` the ``q``-th new token, right-padded. The 2D attention mask hides the padding, and
        transformers makes it causal over slots; position ids are given explicitly, since a row's real position is
        its own prefix length plus ``q``, not the slot. Masked slots get exactly zero attention weight, so a row's
        scores do not depend on its batch.
        """
        from transformers import DynamicCache

        width = max(len(r.ids) for r in rows)
        lengths = [r.parent.length if r.parent is not None else 0 for r in rows]
        past = max(lengths)
        batch = len(rows)
        device = self.device
        cache = DynamicCache()
        if past:
            kv = _gather_prefixes([r.parent for r in rows], past)
            cache = DynamicCache(ddp_cache_data=[(layer[0], layer[1]) for layer in kv])
        mask = torch.zeros(batch, past + width, dtype=torch.long)
        for i, (r, length) in enumerate(zip(rows, lengths)):
            mask[i, past - length : past + len(r.ids)] = 1
        positions = torch.tensor(lengths, dtype=torch.long)[:, None] + torch.arange(width)[None, :]
        hidden = self.body(
            input_ids=right_pad([r.ids for r in rows], pad_token_id(self.tokenizer)).to(device),
            attention_mask=mask.to(device),
            position_ids=positions.to(device),
            use_cache=True,
            **{self._cache_kwarg: cache},
        ).last_hidden_state
        index_rows = torch.tensor([i for i, r in enumerate(rows) for _ in r.ends], dtype=torch.long, device=device)
        index_pos = torch.tensor([p for r in rows for p in r.ends], dtype=torch.long, device=device)
        probs = (
            margins_to_probs(class_margin(self.head(hidden[index_rows, index_pos])).cpu()) if len(index_pos) else []
        )
        new_kv = torch.stack(
            [torch.stack([layer.keys[:, :, past:], layer.values[:, :, past:]]) for layer in cache.layers]
        )
        out = []
        cursor = 0
        for i, (r, length) in enumerate(zip(rows, lengths)):
            # Clone: a view would keep the whole padded batch tensor alive.
            segment = new_kv[:, :, i, :, : r.keep_len].clone() if r.keep_len else None
            out.append((_Node(r.parent, segment, length + r.keep_len), probs[cursor : cursor + len(r.ends)]))
            cursor += len(r.ends)
            self.tokens_processed += len(r.ids)
        return out


@dataclass
class _Row:
    """New tokens to run after ``parent``'s state: score at ``ends``, keep the first ``keep_len`` in the node."""

    parent: _Node | None
    ids: list[int]
    ends: list[int]
    keep_len: int


def _gather_prefixes(parents: list[_Node | None], past: int) -> torch.Tensor:
    """Every row's full prefix, left-padded to ``past`` positions: ``[layers, 2, rows, kv_heads, past, head_dim]``.

    Few large tensor operations whatever the tree's shape (one concatenation of every segment the rows need, shared
    ancestors once, and one gather), since many small copies cost more than the attention they feed.
    """
    pieces: list[torch.Tensor] = []
    offsets: dict[int, int] = {}
    index_of: dict[int, list[int]] = {}  # per distinct parent: column of each prefix position in the concatenation
    rows_index: list[list[int]] = []
    total = 1  # column 0 is the zero padding
    for parent in parents:
        if parent is None or not parent.length:
            rows_index.append([0] * past)
            continue
        if id(parent) not in index_of:
            chain = []
            node = parent
            while node is not None:
                if node.kv is not None:
                    chain.append(node)
                node = node.parent
            columns: list[int] = []
            for seg in reversed(chain):
                if id(seg) not in offsets:
                    offsets[id(seg)] = total
                    pieces.append(seg.kv)
                    total += seg.kv.shape[3]
                start = offsets[id(seg)]
                columns.extend(range(start, start + seg.kv.shape[3]))
            index_of[id(parent)] = [0] * (past - len(columns)) + columns
        rows_index.append(index_of[id(parent)])
    first = pieces[0]
    pad = first.new_zeros(*first.shape[:3], 1, first.shape[4])
    flat = torch.cat([pad, *pieces], dim=3)
    index = torch.tensor(rows_index, dtype=torch.long, device=flat.device).view(-1)
    layers, two, heads, _, dim = flat.shape
    return flat.index_select(3, index).view(layers, two, heads, len(parents), past, dim).transpose(2, 3)
