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
a kept node, so only the live beams' paths stay in memory. Solutions longer than the model's context are not
truncated here (tree search bounds them with its token budget).
"""

from __future__ import annotations

import inspect
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

import torch

from .batching import base_and_head, margins_to_probs, right_pad
from .token_cls import class_margin

_ROOT = "__root__"


@dataclass
class ScoreRequest:
    """Score ``steps`` of a solution to ``problem``.

    ``parent`` is the node whose state covers a leading part of ``steps`` (None: start from the problem).
    When ``node`` is given, the state after the first ``keep_steps`` steps is stored under it (the rest, e.g.
    lookahead steps, is scored but not kept). ``keep_steps`` defaults to all steps.
    """

    problem: str
    steps: list[str]
    parent: Hashable | None = None
    node: Hashable | None = None
    keep_steps: int | None = None


@dataclass
class ScoreResult:
    scores: list[float]
    tokens: int


@dataclass
class _Node:
    parent: _Node | None
    layers: list[tuple[torch.Tensor, torch.Tensor]]  # this node's own new positions only, batch dim 1
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
        params = inspect.signature(self.body.forward).parameters
        # transformers 5.x renamed ``past_key_values`` to ``cache``; older releases only know the former.
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"
        self._nodes: dict[Hashable, _Node] = {}

    @classmethod
    def from_verifier(cls, verifier, max_batch_size: int = 64) -> PrefixCachedScorer:
        return cls(verifier.model, verifier.tokenizer, verifier.step_separator, max_batch_size=max_batch_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

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
        """Scores of all steps of each request, running only the tokens not covered by its parent's state."""
        self.model.eval()
        for problem in dict.fromkeys(r.problem for r in requests if r.parent is None):
            if (_ROOT, problem) not in self._nodes:
                bos = self.tokenizer.bos_token_id
                prompt_ids = ([bos] if bos is not None else []) + self._ids([problem])[0]
                self._nodes[(_ROOT, problem)] = self._extend(None, [prompt_ids], [[]], [len(prompt_ids)])[0][0]
        groups: dict[Hashable, list[int]] = {}
        for i, r in enumerate(requests):
            parent = (_ROOT, r.problem) if r.parent is None else r.parent
            if parent not in self._nodes:
                raise KeyError(f"Unknown or released parent node {parent!r}")
            groups.setdefault(parent, []).append(i)
        results: list[ScoreResult | None] = [None] * len(requests)
        for parent_key, members in groups.items():
            for start in range(0, len(members), self.max_batch_size):
                chunk = members[start : start + self.max_batch_size]
                self._score_group(self._nodes[parent_key], [requests[i] for i in chunk], chunk, results)
        return results  # type: ignore[return-value]

    def _score_group(self, parent: _Node, requests: list[ScoreRequest], slots: list[int], results: list) -> None:
        seqs, ends, keeps = [], [], []
        for r in requests:
            if len(r.steps) < parent.num_steps:
                raise ValueError(f"A request has {len(r.steps)} steps but its parent covers {parent.num_steps}")
            new_steps = r.steps[parent.num_steps :]
            keep = len(r.steps) if r.keep_steps is None else r.keep_steps
            if keep < parent.num_steps or keep > len(r.steps):
                raise ValueError(f"keep_steps={keep} outside [{parent.num_steps}, {len(r.steps)}]")
            ids: list[int] = []
            step_ends: list[int] = []
            keep_len = 0
            for j, step_ids in enumerate(self._ids(new_steps)):
                ids.extend(step_ids + self._separator_ids)
                step_ends.append(len(ids) - 1)
                if parent.num_steps + j + 1 == keep:
                    keep_len = len(ids)
            seqs.append(ids)
            ends.append(step_ends)
            keeps.append((keep, keep_len))
        nodes, new_scores = self._extend(parent, seqs, ends, [k[1] for k in keeps])
        for r, slot, node, scores, (keep, _), seq in zip(requests, slots, nodes, new_scores, keeps, seqs):
            all_scores = parent.scores + scores
            node.scores = all_scores[:keep]
            if r.node is not None:
                self._nodes[r.node] = node
            results[slot] = ScoreResult(all_scores, len(seq))

    def _extend(
        self, parent: _Node | None, seqs: list[list[int]], ends: list[list[int]], keep_lens: list[int]
    ) -> tuple[list[_Node], list[list[float]]]:
        """Run ``seqs`` (one batch, right-padded) after ``parent``'s prefix; one child node and scores per row."""
        prefix_len = parent.length if parent is not None else 0
        # Rows without new tokens keep no segment of their own: their state is their parent's.
        base = [_Node(parent, [], prefix_len + keep) for keep in keep_lens]
        runnable = [i for i, s in enumerate(seqs) if s]
        scores: list[list[float]] = [[] for _ in seqs]
        if not runnable:
            return base, scores
        from transformers import DynamicCache

        batch = len(runnable)
        cache = DynamicCache()
        prefix = _materialize(parent) if parent is not None else []
        if prefix:
            cache = DynamicCache(
                ddp_cache_data=[
                    (k.expand(batch, -1, -1, -1).contiguous(), v.expand(batch, -1, -1, -1).contiguous())
                    for k, v in prefix
                ]
            )
        pad = getattr(self.tokenizer, "pad_token_id", None) or 0
        input_ids = right_pad([seqs[i] for i in runnable], pad).to(self.device)
        # Right padding under a causal mask: real tokens never attend to the padding after them.
        hidden = self.body(input_ids=input_ids, use_cache=True, **{self._cache_kwarg: cache}).last_hidden_state
        rows = torch.tensor([r for r, i in enumerate(runnable) for _ in ends[i]], dtype=torch.long)
        pos = torch.tensor([p for i in runnable for p in ends[i]], dtype=torch.long)
        if len(pos):
            probs = margins_to_probs(class_margin(self.head(hidden[rows.to(self.device), pos.to(self.device)])).cpu())
        else:
            probs = []
        cursor = 0
        layers = [(layer.keys, layer.values) for layer in cache.layers]
        for row, i in enumerate(runnable):
            scores[i] = probs[cursor : cursor + len(ends[i])]
            cursor += len(ends[i])
            # Clone: a view would keep the whole padded batch tensor alive.
            base[i].layers = [
                (
                    k[row : row + 1, :, prefix_len : prefix_len + keep_lens[i]].clone(),
                    v[row : row + 1, :, prefix_len : prefix_len + keep_lens[i]].clone(),
                )
                for k, v in layers
            ]
            self.tokens_processed += len(seqs[i])
        return base, scores


def _materialize(node: _Node) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The full key/value prefix of a node: its ancestors' segments concatenated along the sequence axis."""
    chain = []
    while node is not None:
        if node.layers:
            chain.append(node.layers)
        node = node.parent
    chain.reverse()
    if not chain:
        return []
    return [
        (torch.cat([seg[li][0] for seg in chain], dim=2), torch.cat([seg[li][1] for seg in chain], dim=2))
        for li in range(len(chain[0]))
    ]
