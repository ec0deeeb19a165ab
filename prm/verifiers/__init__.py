"""Verifiers: one interface (``Verifier.score``), one class per PRM style."""

from .aggregation import AGG_STRATEGIES, AggStrategy, aggregate_scores
from .base import Verifier
from .batching import DEFAULT_TOKEN_BUDGET, BatchedVerifier, Encoded, StepScores, length_batches
from .chat_plus_minus import ChatPlusMinusVerifier
from .loading import (
    VERIFIER_CLASSES,
    VERIFIER_TYPES,
    VerifierType,
    detect_verifier_type,
    load_verifier,
    resolve_verifier_type,
)
from .qwen_prm import QwenPRMVerifier
from .scoring import ScoreRequest, ScoreResult, StepScorer
from .step_tag import StepTagVerifier
from .token_cls import TokenClassificationVerifier

__all__ = [
    "AGG_STRATEGIES",
    "DEFAULT_TOKEN_BUDGET",
    "VERIFIER_CLASSES",
    "VERIFIER_TYPES",
    "AggStrategy",
    "BatchedVerifier",
    "ChatPlusMinusVerifier",
    "Encoded",
    "QwenPRMVerifier",
    "ScoreRequest",
    "ScoreResult",
    "StepScorer",
    "StepScores",
    "StepTagVerifier",
    "TokenClassificationVerifier",
    "Verifier",
    "VerifierType",
    "aggregate_scores",
    "detect_verifier_type",
    "length_batches",
    "resolve_verifier_type",
    "load_verifier",
]
