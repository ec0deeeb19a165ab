"""Choosing a strategy per difficulty bin and budget, in-sample and two-fold cross-fitted, with bootstrap intervals.

Everything is vectorised over bootstrap resamples: a resample is a row of per-problem weights (how often each
problem was drawn; row 0 is the data itself), hits per (fold, bin, strategy) are one matrix product per group, and
the best strategy within every budget at once is a running maximum over strategies sorted by cost. The whole
procedure (choice and evaluation) is repeated inside every resample, so the intervals include selection noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def difficulty_bins(score: np.ndarray, num_bins: int) -> np.ndarray:
    """Quantile bins by rank: 0 holds the highest scores (easiest), ``num_bins - 1`` the lowest; equal sizes up to
    one, ties broken by problem order so the bins are deterministic."""
    if num_bins < 1 or num_bins > len(score):
        raise ValueError(f"num_bins must be between 1 and the number of problems ({len(score)}), got {num_bins}")
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    bins = np.empty(len(score), dtype=int)
    bins[order] = np.arange(len(score)) * num_bins // len(score)
    return bins


def fold_split(bins: np.ndarray, seed: int) -> np.ndarray:
    """Two folds, balanced within every bin (shuffled, then alternated), so each bin is chosen on both halves."""
    rng = np.random.default_rng(seed)
    folds = np.empty_like(bins)
    for level in np.unique(bins):
        members = np.flatnonzero(bins == level)
        rng.shuffle(members)
        folds[members] = np.arange(len(members)) % 2
    return folds


def bootstrap_weights(num_problems: int, samples: int, seed: int) -> np.ndarray:
    """``(samples + 1, P)`` draw counts: row 0 all ones (the data), then resamples of problems with replacement."""
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(num_problems, np.full(num_problems, 1.0 / num_problems), size=samples)
    return np.vstack([np.ones((1, num_problems)), draws]).astype(float)


def group_hits(weights: np.ndarray, correct: np.ndarray, groups: np.ndarray, num_groups: int) -> np.ndarray:
    """``(B, G, S)`` weighted number of problems of each group that each strategy gets right.

    One matrix product over a ``(P, G x S)`` block matrix: many small products per group run far slower with a
    threaded BLAS on busy cores."""
    blocks = (np.arange(num_groups)[None, :, None] == groups[:, None, None]) * correct.T[:, None, :]
    return (weights @ blocks.reshape(len(groups), -1)).reshape(weights.shape[0], num_groups, -1)


def running_best(hits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Along the last axis (strategies sorted by cost): the best value among the first k and its index (the
    earliest, i.e. cheapest, on ties)."""
    best = np.maximum.accumulate(hits, axis=-1)
    previous = np.concatenate([np.full(hits.shape[:-1] + (1,), -np.inf), best[..., :-1]], axis=-1)
    index = np.where(hits > previous, np.arange(hits.shape[-1]), 0)
    return best, np.maximum.accumulate(index, axis=-1)


@dataclass
class Selection:
    """Accuracies (%) per resample row and budget, and the point-estimate choices (strategy indices)."""

    in_sample: np.ndarray  # (B, M)
    cross_fitted: np.ndarray  # (B, M)
    in_sample_choice: np.ndarray  # (K, M): per bin, chosen on all problems
    fold_choice: np.ndarray  # (2, K, M): per fold and bin, chosen on that fold (reported on the other)


def select(
    correct: np.ndarray, weights: np.ndarray, bins: np.ndarray, folds: np.ndarray, allowed: np.ndarray
) -> Selection:
    """Per budget (``allowed[j]`` = how many of the cost-sorted strategies fit) and bin, the best strategy.

    ``correct`` is ``(S, P)`` with strategies sorted by cost; in-sample chooses and reports on all problems of a
    bin; cross-fitted chooses on one fold and reports on the other, both ways round.
    """
    num_bins = int(bins.max()) + 1
    hits = group_hits(weights, correct, bins * 2 + folds, 2 * num_bins)
    hits = hits.reshape(weights.shape[0], num_bins, 2, -1).transpose(0, 2, 1, 3)  # (B, fold, bin, S)
    total = weights.sum(axis=1)[:, None]
    columns = allowed - 1
    best, index = running_best(hits.sum(axis=1))  # (B, bin, S)
    in_sample = 100.0 * best[..., columns].sum(axis=1) / total
    _, fold_index = running_best(hits)  # (B, fold, bin, S)
    choice = fold_index[..., columns]  # (B, fold, bin, M)
    reported = np.take_along_axis(hits[:, ::-1], choice, axis=-1)  # chosen on one fold, counted on the other
    cross_fitted = 100.0 * reported.sum(axis=(1, 2)) / total
    return Selection(in_sample, cross_fitted, index[0][:, columns], fold_index[0][..., columns])


def interval(samples: np.ndarray, level: float = 0.95) -> np.ndarray:
    """Percentile interval over resamples (rows 1..B) of every column: ``(2, ...)``."""
    tail = 100.0 * (1.0 - level) / 2.0
    return np.percentile(samples[1:], [tail, 100.0 - tail], axis=0)
