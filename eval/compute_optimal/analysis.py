"""The compute-optimal analysis of a strategy table: per budget axis and difficulty kind, the chosen strategy per
bin, in-sample and cross-fitted accuracy with bootstrap intervals, every single strategy, and where the curves
reach other (e.g. larger) models' single-sample and majority accuracy on the FLOPs axis."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..pool import GradedPool, pool_correct_at
from .compute import flops
from .runs import AXES, Run, StrategyTable
from .selection import Selection, bootstrap_weights, difficulty_bins, fold_split, interval, select


@dataclass
class Reference:
    """Another policy's run reduced to two points: one sample, and majority vote over its whole pool."""

    name: str
    label: str
    n: int
    single: np.ndarray  # per problem: the fraction of its samples that are right (expected single-sample accuracy)
    majority: np.ndarray  # per problem: majority vote over all samples right
    single_flops: np.ndarray
    majority_flops: np.ndarray


def reference_from_run(run: Run, pools: Sequence[GradedPool], problems: Sequence[int]) -> Reference:
    """Single-sample and majority@N accuracy and FLOPs (no verifier) of a run, problems in ``problems`` order."""
    by_index = {row["index"]: row for row in run.rows}
    rows = [by_index[i] for i in problems]
    single = np.array(
        [np.mean([p.correct.get(k, False) if k else False for k in p.keys]) if p.keys else 0.0 for p in pools]
    )
    size = max(len(p.keys) for p in pools)
    majority = np.array([pool_correct_at(p, size)["maj"] for p in pools], dtype=float)
    prompt = run.prompt_tokens if run.prompt_tokens is not None else np.zeros(len(rows))
    mean_tokens = np.array([np.mean(r["completion_tokens"]) if r["completion_tokens"] else 0.0 for r in rows])
    all_tokens = np.array([float(sum(r["completion_tokens"])) for r in rows])
    return Reference(
        run.name,
        run.label,
        size,
        single,
        majority,
        flops(run.policy_params, prompt, mean_tokens, 0.0, 0.0),
        flops(run.policy_params, prompt, all_tokens, 0.0, 0.0),
    )


def estimate(samples: np.ndarray) -> dict[str, Any]:
    """Point estimate (row 0) and 95% bootstrap interval of a ``(B,)`` column."""
    low, high = interval(samples)
    return {"accuracy": round(float(samples[0]), 3), "ci95": [round(float(low), 3), round(float(high), 3)]}


def accuracy_samples(weights: np.ndarray, per_problem: np.ndarray) -> np.ndarray:
    """Accuracy (%) in every resample row of ``(..., P)`` per-problem correctness."""
    return 100.0 * (weights @ np.atleast_2d(per_problem).T) / weights.sum(axis=1, keepdims=True)


def realized_cost(cost: np.ndarray, bins: np.ndarray, choice: np.ndarray) -> np.ndarray:
    """Mean cost per problem of the per-bin choices ``(K, M)`` at every budget (``cost`` sorted like ``choice``)."""
    totals = np.zeros(choice.shape[1])
    for level in range(choice.shape[0]):
        totals += cost[choice[level]][:, bins == level].sum(axis=1)
    return totals / len(bins)


def axis_report(
    table: StrategyTable,
    axis: str,
    bins_by_kind: dict[str, np.ndarray],
    weights: np.ndarray,
    seed: int,
    strategy_samples: np.ndarray,
) -> dict[str, Any]:
    """One budget axis: budgets, and per budget every method at its largest setting within the budget, the best
    single strategy and each difficulty kind's compute-optimal choice."""
    mean_cost = table.cost[axis].mean(axis=1)
    order = np.argsort(mean_cost, kind="stable")
    sorted_cost = mean_cost[order]
    budgets = np.unique(sorted_cost)
    allowed = np.searchsorted(sorted_cost, budgets, side="right")
    correct, cost = table.correct[order], table.cost[axis][order]
    names = [table.strategies[i].name for i in order]
    one_bin = np.zeros(len(table.problems), dtype=int)
    single = select(correct, weights, one_bin, fold_split(one_bin, seed), allowed)
    kinds: dict[str, Selection] = {
        kind: select(correct, weights, bins, fold_split(bins, seed), allowed) for kind, bins in bins_by_kind.items()
    }
    rows = []
    for j, budget in enumerate(budgets):
        row: dict[str, Any] = {
            "budget": float(budget),
            "best_single": {
                "strategy": names[single.in_sample_choice[0, j]],
                "in_sample": estimate(single.in_sample[:, j]),
                "cross_fitted": estimate(single.cross_fitted[:, j]),
            },
            "methods": methods_within(table, order[: allowed[j]], strategy_samples),
        }
        for kind, sel in kinds.items():
            spent = realized_cost(cost, bins_by_kind[kind], sel.in_sample_choice[:, j : j + 1])[0]
            row[kind] = {
                "choice_per_bin": [names[c] for c in sel.in_sample_choice[:, j]],
                "choice_per_bin_by_fold": [[names[c] for c in fold[:, j]] for fold in sel.fold_choice],
                "in_sample_optimistic": estimate(sel.in_sample[:, j]),
                "cross_fitted": estimate(sel.cross_fitted[:, j]),
                "cross_fitted_gain_over_best_single": estimate(sel.cross_fitted[:, j] - single.cross_fitted[:, j]),
                "mean_cost_of_in_sample_choice": float(spent),
            }
        rows.append(row)
    return {"budgets": rows, "_curves": {k: s.cross_fitted[0] for k, s in kinds.items()}, "_budgets": budgets}


def methods_within(table: StrategyTable, within: np.ndarray, samples: np.ndarray) -> dict[str, Any]:
    """Each method (label and vote) at its most expensive strategy among ``within`` (indices sorted by cost)."""
    out: dict[str, Any] = {}
    for s in within:  # cheapest first: a later strategy of the same method replaces an earlier one
        strategy = table.strategies[s]
        out[f"{strategy.label} {strategy.vote}"] = {"strategy": strategy.name, **estimate(samples[:, s])}
    return out


def strategy_report(table: StrategyTable, samples: np.ndarray) -> list[dict[str, Any]]:
    """Every single strategy: its settings, mean cost on each axis and accuracy with its interval."""
    out = []
    for s, strategy in enumerate(table.strategies):
        out.append(
            {
                "name": strategy.name,
                "run": strategy.run,
                "label": strategy.label,
                "method": strategy.method,
                "vote": strategy.vote,
                "n": strategy.n,
                "cost": {axis: float(table.cost[axis][s].mean()) for axis in AXES},
                **estimate(samples[:, s]),
            }
        )
    return out


def first_reach(budgets: np.ndarray, accuracy: np.ndarray, target: float) -> float | None:
    """The smallest budget at which ``accuracy`` reaches ``target`` (None if it never does)."""
    reached = np.flatnonzero(accuracy >= target)
    return float(budgets[reached[0]]) if len(reached) else None


def reference_report(
    references: Sequence[Reference], weights: np.ndarray, flops_axis: dict[str, Any], strategies: list[dict]
) -> list[dict[str, Any]]:
    """Each reference point, and the FLOPs at which each compute-optimal curve (cross-fitted) and each single
    method first reaches its accuracy."""
    out = []
    for ref in references:
        for kind, per_problem, cost in (
            ("single sample", ref.single, ref.single_flops),
            (f"majority@{ref.n}", ref.majority, ref.majority_flops),
        ):
            point = estimate(accuracy_samples(weights, per_problem)[:, 0])
            target, ref_flops = point["accuracy"], float(cost.mean())
            crossings = {}
            for curve, accuracy in flops_axis["_curves"].items():
                reach = first_reach(flops_axis["_budgets"], accuracy, target)
                crossings[f"compute_optimal_{curve}_cross_fitted"] = {
                    "flops": reach,
                    "flops_ratio_to_reference": None if reach is None else reach / ref_flops,
                }
            methods: dict[str, list[dict]] = {}
            for s in strategies:
                methods.setdefault(f"{s['label']} {s['vote']}", []).append(s)
            for method, points in methods.items():
                points = sorted(points, key=lambda p: p["cost"]["flops"])
                reach = next((p for p in points if p["accuracy"] >= target), None)
                crossings[method] = {
                    "flops": None if reach is None else reach["cost"]["flops"],
                    "flops_ratio_to_reference": None if reach is None else reach["cost"]["flops"] / ref_flops,
                    "at": None if reach is None else reach["name"],
                }
            out.append(
                {
                    "run": ref.name,
                    "label": ref.label,
                    "kind": kind,
                    "flops": ref_flops,
                    **point,
                    "reached_by": crossings,
                }
            )
    return out


def analyse(
    table: StrategyTable,
    difficulty: dict[str, np.ndarray],
    references: Sequence[Reference] = (),
    num_bins: int = 5,
    bootstrap_samples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The whole analysis as a JSON-ready dict (``axes`` -> per budget rows; ``strategies``; ``references``)."""
    weights = bootstrap_weights(len(table.problems), bootstrap_samples, seed)
    bins = {kind: difficulty_bins(score, num_bins) for kind, score in difficulty.items()}
    samples = accuracy_samples(weights, table.correct)
    axes = {axis: axis_report(table, axis, bins, weights, seed, samples) for axis in AXES}
    strategies = strategy_report(table, samples)
    refs = reference_report(references, weights, axes["flops"], strategies)
    for report in axes.values():
        report.pop("_curves"), report.pop("_budgets")
    return {
        "num_problems": len(table.problems),
        "num_bins": num_bins,
        "bins": {
            kind: {"level_of_problem": {int(i): int(b) + 1 for i, b in zip(table.problems, level)}}
            for kind, level in bins.items()
        },
        "axes": axes,
        "strategies": strategies,
        "references": refs,
    }
