"""prmkit: train, evaluate and search with process reward models.

The heavy entry points are imported on first use, so ``import prm.data`` stays light.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "PRMConfig": "prm.training",
    "PRMTrainer": "prm.training",
    "Verifier": "prm.verifiers",
    "load_verifier": "prm.verifiers",
    "aggregate_scores": "prm.verifiers",
    "load_stepwise_dataset": "prm.data",
    "tokenize_dataset": "prm.data",
    "tokenize_row": "prm.data",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'prm' has no attribute {name!r}")
