"""The scorer protocol of tree search and its request type.

Beam search and DVTS score partial solutions that grow one step at a time. A scorer takes one
:class:`ScoreRequest` per beam and returns one :class:`ScoreResult`; ``parent`` and ``node`` name the search-tree
nodes, so a scorer that keeps per-node state (``prm.verifiers.prefix_cache.PrefixCachedScorer``) only runs the new
tokens, and ``release`` lets it drop the states of beams that were not kept. A scorer without state
(``search.primitives.FullScorer``) re-scores each whole prefix with any ``Verifier`` and ignores the node names.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Protocol


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
    """P(correct) of each requested step, and the verifier tokens spent on the request (a share of a batch's total
    when the verifier reports only totals)."""

    scores: list[float]
    tokens: float


class StepScorer(Protocol):
    """What tree search scores beams with."""

    @property
    def tokens_processed(self) -> int:
        """Tokens that went through the verifier so far."""

    def score(self, requests: list[ScoreRequest]) -> list[ScoreResult]:
        """One result per request, in order."""

    def release(self, keep: Iterable[Hashable]) -> None:
        """Forget node states that neither ``keep`` nor their descendants need."""
