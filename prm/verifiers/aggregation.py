"""How a solution's step scores become one score. Used everywhere a solution is ranked."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

AggStrategy = Literal["last", "min", "prod", "mean"]
AGG_STRATEGIES: tuple[str, ...] = ("last", "min", "prod", "mean")


def aggregate_scores(step_scores: Sequence[float], strategy: AggStrategy = "last") -> float:
    """One score per solution. ``last`` is what search-and-learn uses for Qwen/RLHFlow PRMs; ``min`` and ``prod``
    punish any weak step (``prod`` also punishes length). A solution without scored steps gets 0."""
    if not step_scores:
        return 0.0
    if strategy == "last":
        return float(step_scores[-1])
    if strategy == "min":
        return float(min(step_scores))
    if strategy == "prod":
        return float(math.prod(step_scores))
    if strategy == "mean":
        return float(sum(step_scores) / len(step_scores))
    raise ValueError(f"Unknown agg_strategy {strategy!r}; choose one of {AGG_STRATEGIES}")
