"""Run time of the compute-optimal analysis on synthetic runs the size of the blog's: 500 problems, Best-of-N at
N = 256 (prefixes 1..256) and beam search and DVTS at N = 4, 16, 64, 256, three votes each.

Stages are timed separately (grading every completion, building the strategy table, the analysis with 1,000
bootstrap resamples), and the vectorised bootstrap is compared side by side with the same selection run one
resample at a time (a Python loop over resamples), on the same table:

    python benchmarks/compute_optimal_time.py [--problems 500] [--bootstrap 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from eval.compute_optimal import Run, analyse, build_table, grade_runs, pool_difficulty
from eval.compute_optimal.selection import bootstrap_weights, difficulty_bins, fold_split, select
from prm.grading import MathGrader


def synthetic_run(name: str, method: str, n: int, problems: int, skill: float, seed: int) -> Run:
    """Each problem has a difficulty; a sample is right with a probability falling with it (``skill`` shifts it);
    wrong samples pick one of 5 wrong answers; the PRM score of a right sample is higher on average."""
    rng = np.random.default_rng(seed)
    difficulty = np.random.default_rng(0).random(problems)
    rows = []
    for i in range(problems):
        p_right = 1 / (1 + np.exp(8 * (difficulty[i] - 0.3 - skill)))
        right = rng.random(n) < p_right
        answers = np.where(right, i, 1000 + rng.integers(0, 5, n))
        scores = np.clip(0.5 + 0.25 * (2 * right - 1) + 0.2 * rng.standard_normal(n), 0, 1)
        tokens = rng.integers(100, 400, n).tolist()
        rows.append(
            {
                "index": i,
                "problem": f"problem {i}",
                "answer": str(i),
                "completions": [f"Step.\n\nThe answer is $\\boxed{{{a}}}$." for a in answers],
                "steps": [["Step.", "answer"]] * n,
                "scores": [[float(s)] for s in scores],
                "completion_tokens": tokens,
                "generated_tokens": sum(tokens) * (1 if method == "best_of_n" else 3),
                "verifier_tokens": sum(tokens) * 2,
                "prompt_tokens": 150,
                "method": method,
            }
        )
    return Run(name, rows, method, method, 1.2e9, 1.5e9, np.full(problems, 150.0))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=500)
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()

    start = time.perf_counter()
    runs = [synthetic_run("best_of_n", "best_of_n", 256, args.problems, 0.0, 1)]
    for k, method in enumerate(("beam_search", "dvts")):
        for j, n in enumerate((4, 16, 64, 256)):
            runs.append(synthetic_run(f"{method}_n{n}", method, n, args.problems, 0.05 * (k + 1), 10 * k + j))
    completions = sum(len(r["completions"]) for run in runs for r in run.rows)
    print(
        f"{len(runs)} runs, {args.problems} problems, {completions:,} completions "
        f"(built in {time.perf_counter() - start:.1f} s)"
    )

    grader = MathGrader()
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        problems, pools = grade_runs(runs, grader)
        t1, c1 = time.perf_counter(), time.process_time()
    finally:
        grader.close()
    table = build_table(runs, problems, pools)
    _, oracle, predicted = pool_difficulty(runs, pools)
    t2, c2 = time.perf_counter(), time.process_time()
    result = analyse(table, {"oracle": oracle, "predicted": predicted}, (), 5, args.bootstrap, 0)
    t3, c3 = time.perf_counter(), time.process_time()
    # CPU seconds of this process (wall seconds grow with other load on shared cores; the grader's worker process
    # is not in the CPU figure of the grading stage).
    print(
        f"grading: {t1 - t0:.1f} s wall ({c1 - c0:.1f} s CPU); strategy table ({len(table.strategies)} "
        f"strategies): {t2 - t1:.1f} s wall ({c2 - c1:.1f} s CPU); analysis (3 axes x 2 difficulty kinds + best "
        f"single, {args.bootstrap} resamples): {t3 - t2:.2f} s wall ({c3 - c2:.2f} s CPU)"
    )
    best = result["axes"]["n"]["budgets"][-1]
    print(
        f"at N<=256: best single {best['best_single']['strategy']} {best['best_single']['in_sample']['accuracy']:.1f}%,"
        f" compute-optimal (predicted, cross-fitted) {best['predicted']['cross_fitted']['accuracy']:.1f}%"
    )

    # Side by side on one axis and one difficulty kind: all resamples at once vs one resample at a time.
    mean_cost = table.cost["flops"].mean(axis=1)
    order = np.argsort(mean_cost, kind="stable")
    correct = table.correct[order]
    allowed = np.searchsorted(mean_cost[order], np.unique(mean_cost), side="right")
    bins = difficulty_bins(predicted, 5)
    folds = fold_split(bins, 0)
    weights = bootstrap_weights(len(problems), args.bootstrap, 0)
    t0 = time.perf_counter()
    together = select(correct, weights, bins, folds, allowed)
    t1 = time.perf_counter()
    alone = [select(correct, weights[b : b + 1], bins, folds, allowed).cross_fitted[0] for b in range(len(weights))]
    t2 = time.perf_counter()
    assert np.allclose(np.array(alone), together.cross_fitted)
    print(
        f"selection with {args.bootstrap} resamples, one axis: vectorised {t1 - t0:.3f} s, "
        f"loop over resamples {t2 - t1:.3f} s, ratio {(t2 - t1) / (t1 - t0):.1f}x (same numbers)"
    )


if __name__ == "__main__":
    main()
