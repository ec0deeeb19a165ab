"""Verifiers: one interface (``Verifier.score``), one class per PRM style."""

from .aggregation import AGG_STRATEGIES, AggStrategy, aggregate_scores
from .base import Verifier

__all__ = ["AGG_STRATEGIES", "AggStrategy", "Verifier", "aggregate_scores"]
