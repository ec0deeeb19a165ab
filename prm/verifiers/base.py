"""The one verifier interface used by evaluation and search."""

from __future__ import annotations

from abc import ABC, abstractmethod


class Verifier(ABC):
    """Scores every step of many solutions in one call.

    ``score(problems, solutions)[i][j]`` is the probability that step ``j`` of solution ``i`` is correct.
    Implementations batch internally (by length, under a token budget) and add the number of tokens they ran
    through the model to ``tokens_processed`` so callers can account for verifier compute.
    """

    step_separator: str = "\n"
    tokens_processed: int = 0

    @abstractmethod
    def score(self, problems: list[str], solutions: list[list[str]]) -> list[list[float]]:
        """One probability per step, for each (problem, solution) pair."""
