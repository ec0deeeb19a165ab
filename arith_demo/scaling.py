"""The demo's compute-optimal stage: every seed's search runs (Best-of-N, beam search and DVTS at each N it runs)
pooled into one set of problems and analysed by ``recipes/compute_optimal.py``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SEED_STRIDE = 100_000  # pooled problem index = seed * SEED_STRIDE + index: seeds search different problems


def run_names(tree_ns: list[int]) -> list[str]:
    """The run folders a seed writes: ``best_of_n`` and ``<method>_n<N>`` for beam search and DVTS."""
    return ["best_of_n"] + [f"{method}_n{n}" for method in ("beam_search", "dvts") for n in tree_ns]


def pool_seeds(seed_dirs: dict[int, Path], names: list[str], out: Path) -> list[Path]:
    """One run folder per run name holding every seed's rows (problem indices made distinct per seed) and the
    first seed's settings; each seed searched with its own PRM, all of one architecture and size."""
    pooled = []
    for name in names:
        target = out / name
        target.mkdir(parents=True, exist_ok=True)
        with (target / "results.jsonl").open("w") as f:
            for seed, directory in seed_dirs.items():
                for line in (directory / name / "results.jsonl").read_text().splitlines():
                    row = json.loads(line)
                    row["index"] = seed * SEED_STRIDE + row["index"]
                    f.write(json.dumps(row) + "\n")
        settings = json.loads((next(iter(seed_dirs.values())) / name / "search_config.json").read_text())
        settings["pooled_seeds"] = sorted(seed_dirs)
        (target / "search_config.json").write_text(json.dumps(settings, indent=2) + "\n")
        pooled.append(target)
    return pooled


def compute_optimal_stage(
    output_dir: Path,
    seeds: list[int],
    tree_ns: list[int],
    bootstrap_samples: int = 1000,
    references: Sequence[str] = (),
):
    """Pool the seeds' runs under ``OUT/compute_optimal/runs`` and analyse them with the recipe's package function
    (``recipes/compute_optimal.py``); ``references`` name run folders of other (larger) policies on the same
    problems, placed on the FLOPs axis as single-sample and majority points. Returns ``compute_optimal.json``."""
    from eval.compute_optimal.config import ComputeOptimalArguments
    from search.compute_optimal import compute_optimal_from_args

    out = output_dir / "compute_optimal"
    names = run_names(tree_ns)
    seed_dirs = {seed: output_dir / f"seed_{seed}" for seed in seeds}
    runs = pool_seeds(seed_dirs, names, out / "runs")
    reference_runs = pool_seeds(seed_dirs, list(references), out / "reference_runs") if references else []
    settings = json.loads((runs[0] / "search_config.json").read_text())
    args = ComputeOptimalArguments(
        runs=[str(r) for r in runs],
        reference_runs=[str(r) for r in reference_runs] or None,
        output_dir=str(out),
        agg_strategy=settings["search"]["agg_strategy"],
        bootstrap_samples=bootstrap_samples,
    )
    return compute_optimal_from_args(args)


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _ci(estimate: dict[str, Any]) -> str:
    low, high = estimate["ci95"]
    return f"{estimate['accuracy']:.1f} [{low:.1f}, {high:.1f}]"


def compute_optimal_section(result: dict[str, Any], image: str = "compute_optimal/compute_optimal.png") -> list[str]:
    """Markdown of the compute-optimal analysis: per budget N the best single strategy, the compute-optimal one
    (cross-fitted, predicted and oracle bins) with 95% intervals and the per-bin choices, then a reading."""
    lines = [
        "## Compute-optimal search (recipes/compute_optimal.py over the seeds' runs)",
        "",
        f"![compute-optimal]({image})",
        "",
        f"{result['num_problems']} problems (every seed's held-out problems pooled), {result['num_bins']} difficulty "
        "levels (1 = easiest). Accuracy % with 95% bootstrap intervals over problems; cross-fitted: chosen on one "
        "half of the problems, reported on the other.",
        "",
        _md_row(
            [
                "N ≤",
                "best single strategy",
                "compute-optimal, predicted bins",
                "gain",
                "oracle bins",
                "in-sample (optimistic)",
                "choice per level (predicted)",
            ]
        ),
        _md_row(["---"] * 7),
    ]
    for row in result["axes"]["n"]["budgets"]:
        pred, oracle, best = row["predicted"], row["oracle"], row["best_single"]
        lines.append(
            _md_row(
                [
                    f"{row['budget']:g}",
                    f"{best['strategy']}: {_ci(best['cross_fitted'])} (in-sample {best['in_sample']['accuracy']:.1f})",
                    _ci(pred["cross_fitted"]),
                    _ci(
                        {
                            "accuracy": pred["cross_fitted_gain_over_best_single"]["accuracy"],
                            "ci95": pred["cross_fitted_gain_over_best_single"]["ci95"],
                        }
                    ),
                    _ci(oracle["cross_fitted"]),
                    _ci(pred["in_sample_optimistic"]),
                    ", ".join(pred["choice_per_bin"]),
                ]
            )
        )
    lines += ["", compute_optimal_reading(result)]
    return lines


def compute_optimal_reading(result: dict[str, Any]) -> str:
    """One paragraph: what choosing per difficulty gives at the largest budget, read off the intervals."""
    top = result["axes"]["n"]["budgets"][-1]
    pred, oracle, best = top["predicted"], top["oracle"], top["best_single"]
    gain = pred["cross_fitted_gain_over_best_single"]
    low, high = gain["ci95"]
    text = [
        f"At N ≤ {top['budget']:g}, choosing a strategy per predicted difficulty level (mean PRM score of the "
        f"Best-of-N pool) reaches {_ci(pred['cross_fitted'])} (accuracy %, 95% interval) on problems it was "
        f"not chosen on, against {_ci(best['cross_fitted'])} for one strategy chosen the same way for all "
        f"problems ({best['strategy']} "
        f"in-sample); the gain is {gain['accuracy']:+.1f} points [{low:+.1f}, {high:+.1f}]."
    ]
    if low > 0:
        text.append("The interval excludes zero: matching the search to the difficulty pays here.")
    elif high < 0:
        text.append(
            "The interval is below zero: choosing per level costs accuracy here, as each level's choice is "
            "made on few problems and does not carry over to the other half."
        )
    else:
        text.append(
            "The interval includes zero: with this PRM and this many problems, choosing per difficulty does "
            "not beat the best single strategy beyond noise."
        )
    text.append(
        f"With oracle levels (the pool's pass rate, which needs the gold answer) it reaches "
        f"{_ci(oracle['cross_fitted'])}; chosen and reported on the same problems (in-sample) the predicted-level "
        f"curve would claim {pred['in_sample_optimistic']['accuracy']:.1f}%, the optimism that cross-fitting removes."
    )
    return " ".join(text)


def compute_optimal_summary(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per budget N: best single strategy, compute-optimal accuracy (cross-fitted and in-sample, both difficulty
    kinds), the gain over the best single strategy and the per-level choices, for ``results.json``."""
    out = []
    for row in result["axes"]["n"]["budgets"]:
        entry: dict[str, Any] = {"n": row["budget"], "best_single": row["best_single"]}
        for kind in ("predicted", "oracle"):
            entry[kind] = {
                key: row[kind][key]
                for key in (
                    "cross_fitted",
                    "in_sample_optimistic",
                    "cross_fitted_gain_over_best_single",
                    "choice_per_bin",
                )
            }
        out.append(entry)
    return out
