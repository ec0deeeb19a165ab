"""Paired gains over majority vote with bootstrap intervals over problems, and the ``summary`` block of
``results.json`` that a script reads without parsing the markdown report.

A gain is a paired difference: the PRM method and majority vote on the same problems (and, for Best-of-N, the same
samples), problem by problem, then averaged. Its 95% interval is a percentile bootstrap over problems (resampled
with replacement), pooled over seeds: every seed searches different held-out problems, so the pooled problems are
independent draws. The per-seed intervals are reported too.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np

from eval.compute_optimal.selection import bootstrap_weights, interval
from eval.pool import grade_pool, pool_correct_at

BOOTSTRAP_SAMPLES = 2000
VOTES = ("weighted", "naive", "maj", "pass")


def per_problem_correct(rows: Sequence[dict], grader, agg_strategy: str, ns: Sequence[int]) -> dict[str, Any]:
    """``{"index": [...], vote: {n: [0/1 per problem]}}`` for the votes of :func:`eval.pool.pool_correct_at`, the
    problems in index order; the first ``n`` completions of each pool (for Best-of-N, a run with budget ``n``)."""
    rows = sorted((r for r in rows if r.get("completions")), key=lambda r: r["index"])
    pools = [grade_pool(r, grader, agg_strategy) for r in rows]
    out: dict[str, Any] = {"index": [r["index"] for r in rows]}
    for vote in VOTES:
        out[vote] = {n: [int(pool_correct_at(p, n)[vote]) for p in pools] for n in ns}
    out["single"] = [
        float(np.mean([p.correct.get(k, False) if k else False for k in p.keys])) if p.keys else 0.0 for p in pools
    ]
    return out


def paired_gain(method: Sequence[float], baseline: Sequence[float], seed: int = 0) -> dict[str, Any]:
    """Mean of ``method - baseline`` over problems in points (x100) and its 95% bootstrap interval over problems."""
    diff = 100.0 * (np.asarray(method, dtype=float) - np.asarray(baseline, dtype=float))
    if diff.size == 0:
        return {"gain": float("nan"), "ci95": [float("nan"), float("nan")], "problems": 0}
    weights = bootstrap_weights(diff.size, BOOTSTRAP_SAMPLES, seed)
    samples = weights @ diff / diff.size
    low, high = interval(samples)
    return {
        "gain": round(float(samples[0]), 2),
        "ci95": [round(float(low), 2), round(float(high), 2)],
        "problems": int(diff.size),
    }


def _over_seeds(values: Sequence[float]) -> dict[str, Any]:
    clean = [float(v) for v in values]
    return {
        "mean": round(statistics.fmean(clean), 3) if clean else float("nan"),
        "per_seed": [round(v, 3) for v in clean],
    }


def method_columns(seed_result: dict[str, Any], n: int) -> dict[str, list[float]]:
    """Per-problem correctness (0/1) at budget ``n`` of every method of one seed, and majority vote's."""
    per = seed_result["per_problem"]
    out = {"weighted_bon": per["best_of_n"]["weighted"][n], "naive_bon": per["best_of_n"]["naive"][n]}
    for method in ("beam_search", "dvts"):
        if n in per.get(method, {}):
            out[method] = per[method][n]
    out["majority"] = per["best_of_n"]["maj"][n]
    return out


def gains(results: Sequence[dict[str, Any]], n: int) -> dict[str, Any]:
    """Every PRM method's paired gain over majority@n, per seed and pooled over seeds."""
    per_seed = [method_columns(r, n) for r in results]
    out: dict[str, Any] = {}
    for method in ("weighted_bon", "naive_bon", "beam_search", "dvts"):
        if not all(method in columns for columns in per_seed):
            continue
        pooled_method = [x for columns in per_seed for x in columns[method]]
        pooled_majority = [x for columns in per_seed for x in columns["majority"]]
        out[method] = {
            **paired_gain(pooled_method, pooled_majority),
            "per_seed": [paired_gain(c[method], c["majority"], seed=r["seed"]) for c, r in zip(per_seed, results)],
        }
    return out


def summary_block(
    results: Sequence[dict[str, Any]],
    settings: dict[str, Any],
    scaling: dict[str, Any] | None = None,
    total_seconds: float = float("nan"),
) -> dict[str, Any]:
    """The ``summary`` of ``results.json`` (see the module docstring and the README's demo section); ``scaling`` is
    the compute-optimal analysis, whose reference points place the larger policy on the FLOPs axis."""
    bon_ns = sorted(results[0]["per_problem"]["best_of_n"]["weighted"])
    tree_ns = sorted(set(settings["tree_ns"]))
    accuracy: dict[str, Any] = {}
    for key, vote in (("weighted_bon", "weighted"), ("naive_bon", "naive"), ("majority", "maj"), ("pass", "pass")):
        accuracy[key] = {n: _over_seeds([r["search"]["best_of_n"][vote][n] for r in results]) for n in bon_ns}
    accuracy["single"] = _over_seeds([100.0 * r["policy"]["single"] for r in results])
    for method in ("beam_search", "dvts"):
        accuracy[method] = {n: _over_seeds([r["search"][method][n]["weighted"][n] for r in results]) for n in tree_ns}
    prm = [r["prm"] for r in results]
    verification = {
        "same_prefix_pairs_percent": _over_seeds([100.0 * p["line"]["pair_accuracy"] for p in prm]),
        "within_problem_ranking_percent": _over_seeds([100.0 * p["ranking"] for p in prm]),
        # The same pairs, ranked by the exact line checker (a right answer after a wrong line counts as right).
        "within_problem_ranking_ceiling_percent": _over_seeds([100.0 * p["ranking_ceiling"] for p in prm]),
        # Right = no wrong line (ProcessBench's notion of a correct solution).
        "within_problem_ranking_no_wrong_line_percent": _over_seeds([100.0 * p["ranking_process"] for p in prm]),
        "f1": _over_seeds([p["f1"] for p in prm]),
        "step_auroc": _over_seeds([p["step_auroc"] for p in prm]),
    }
    out = {
        "seeds": [r["seed"] for r in results],
        "problems_per_seed": settings["num_search_problems"],
        "accuracy_percent": accuracy,
        "gain_over_majority_points": {n: gains(results, n) for n in bon_ns},
        "verification": verification,
        "total_seconds": round(total_seconds, 1),
    }
    if all("larger_policy" in r for r in results):
        big = [r["larger_policy"] for r in results]
        out["larger_policy"] = {
            "path": settings.get("large_policy_path"),
            "n": big[0]["n"],
            "single": _over_seeds([b["single"] for b in big]),
            "majority": _over_seeds([b["majority"] for b in big]),
            "on_flops_axis": (scaling or {}).get("references", []),
            "parameters": _counted_parameters(scaling),
        }
    return out


def _counted_parameters(scaling: dict[str, Any] | None) -> dict[str, float] | None:
    """The parameter counts behind the FLOPs axis: the small policy's and its PRM's, and the larger policy's."""
    compute = (scaling or {}).get("compute")
    if not compute or not compute.get("runs") or not compute.get("reference_runs"):
        return None
    run, reference = compute["runs"][0], compute["reference_runs"][0]
    return {"policy": run["policy_params"], "prm": run["verifier_params"], "larger_policy": reference["policy_params"]}


METHOD_NAMES = {
    "weighted_bon": "Best-of-N, weighted vote (PRM)",
    "naive_bon": "Best-of-N, top score (PRM)",
    "beam_search": "Beam search (PRM), weighted",
    "dvts": "DVTS (PRM), weighted",
}


def _interval(gain: dict[str, Any]) -> str:
    low, high = gain["ci95"]
    return f"{gain['gain']:+.1f} [{low:+.1f}, {high:+.1f}]"


def gains_markdown(summary: dict[str, Any]) -> list[str]:
    """The report's section on gains over majority vote (paired, 95% bootstrap intervals over problems), and the
    larger policy's accuracy next to the small one with search."""
    seeds = summary["seeds"]
    lines = [
        "## Gain over majority vote (paired, 95% bootstrap interval over problems)",
        "",
        "Each PRM method minus majority vote at the same N, problem by problem, on the same problems (Best-of-N: the "
        f"same samples); pooled over {len(seeds)} seeds x {summary['problems_per_seed']} problems, then per seed.",
        "",
        "| method | N | gain (points) [95% CI], pooled | " + " | ".join(f"seed {s}" for s in seeds) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in seeds) + " |",
    ]
    for n, by_method in summary["gain_over_majority_points"].items():
        if int(n) == 1:
            continue  # one sample: every method picks it
        for method, gain in by_method.items():
            cells = [METHOD_NAMES[method], str(n), _interval(gain), *(_interval(g) for g in gain["per_seed"])]
            lines.append("| " + " | ".join(cells) + " |")
    big = summary.get("larger_policy")
    if big:
        n = big["n"]
        weighted = summary["accuracy_percent"]["weighted_bon"]
        best = weighted[max(weighted)]["mean"]
        lines += [
            "",
            f"Larger policy (`{big['path']}`, same problems): single sample {big['single']['mean']:.1f}%, majority "
            f"vote @{n} {big['majority']['mean']:.1f}%; the small policy with weighted Best-of-{max(weighted)}: "
            f"{best:.1f}%.",
        ]
        if big.get("parameters"):
            counted = big["parameters"]
            lines.append(
                f"FLOPs count the small policy ({counted['policy']:.3g} parameters) and the PRM "
                f"({counted['prm']:.3g}) per token each processes; the larger policy has "
                f"{counted['larger_policy']:.3g}."
            )
        lines += [f"- {reference_sentence(point)}" for point in big["on_flops_axis"]]
    return lines + [""]


def reference_sentence(point: dict[str, Any]) -> str:
    """Where the small policy with search reaches one of the larger policy's points on the FLOPs axis, if it does."""
    low, high = point["ci95"]
    reached = []
    for method, reach in point["reached_by"].items():
        if reach["flops"] is None:
            continue
        at = f" ({reach['at']})" if reach.get("at") else ""
        reached.append(f"{method}{at} at {reach['flops_ratio_to_reference']:.2f}x its FLOPs")
    where = "; ".join(reached) if reached else "no method of the small policy reaches it at any budget run"
    return (
        f"Larger policy, {point['kind']}: {point['accuracy']:.1f}% [{low:.1f}, {high:.1f}] at "
        f"{point['flops']:.3g} FLOPs per problem. Reached by: {where}."
    )
