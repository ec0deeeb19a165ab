"""The demo's paired gains and the ``summary`` block of results.json, on constructed runs with hand-counted answers."""

from __future__ import annotations

import json

import pytest

from arith_demo.summary import gains_markdown, paired_gain, per_problem_correct, summary_block


class ExactGrader:
    """Answers are integers; equal strings are the same answer."""

    def canonical(self, answer: str) -> str:
        return answer.strip()

    def equivalent(self, answer: str, gold: str) -> bool:
        return answer.strip() == gold.strip()


def row(index: int, answer: str, boxed: list[str], scores: list[float]) -> dict:
    return {
        "index": index,
        "answer": answer,
        "completions": [f"1 + 1 = 2\n\\boxed{{{b}}}" for b in boxed],
        "scores": [[1.0, s] for s in scores],
    }


def test_per_problem_correct_counts_votes_like_pool_metrics():
    rows = [
        # Majority says 5 (wrong); the PRM puts more weight on 7 (right); top score is 7.
        row(1, "7", ["5", "5", "7", "5"], [0.1, 0.2, 0.9, 0.1]),
        # Everyone right.
        row(0, "3", ["3", "3", "3", "3"], [0.5, 0.5, 0.5, 0.5]),
    ]
    got = per_problem_correct(rows, ExactGrader(), "min", [1, 4])
    assert got["index"] == [0, 1]  # index order
    assert got["maj"] == {1: [1, 0], 4: [1, 0]}
    assert got["weighted"] == {1: [1, 0], 4: [1, 1]}
    assert got["naive"][4] == [1, 1]
    assert got["pass"][4] == [1, 1]
    assert got["single"] == [1.0, 0.25]


def test_paired_gain_interval_covers_the_gain_and_excludes_zero_only_when_it_should():
    baseline = [0] * 30 + [1] * 70
    better = [1] * 30 + [1] * 70  # right on every problem majority missed
    gain = paired_gain(better, baseline)
    assert gain["gain"] == pytest.approx(30.0)
    assert gain["ci95"][0] > 0 and gain["ci95"][0] < 30 < gain["ci95"][1]
    assert gain["problems"] == 100
    same = paired_gain(baseline, baseline)
    assert same["gain"] == 0 and same["ci95"] == [0, 0]
    # +1 on 5 problems, -1 on 5 others: the interval straddles zero.
    mixed = paired_gain([1] * 5 + [0] * 5 + [1] * 90, [0] * 5 + [1] * 5 + [1] * 90)
    assert mixed["gain"] == 0 and mixed["ci95"][0] < 0 < mixed["ci95"][1]


def seed_result(seed: int, weighted: list[int], majority: list[int], beam: list[int]) -> dict:
    count = len(weighted)

    def acc(column):
        return 100.0 * sum(column) / count

    return {
        "seed": seed,
        "policy": {"single": 0.5, "step_accuracy": 0.8},
        "prm": {
            "line": {"pair_accuracy": 0.9},
            "ranking": 0.8,
            "ranking_ceiling": 0.9,
            "ranking_process": 0.85,
            "f1": 70.0,
            "step_auroc": 0.9,
        },
        "search": {
            "best_of_n": {
                "weighted": {16: acc(weighted)},
                "naive": {16: acc(weighted)},
                "maj": {16: acc(majority)},
                "pass": {16: 100.0},
            },
            "beam_search": {16: {"weighted": {16: acc(beam)}}},
            "dvts": {16: {"weighted": {16: acc(beam)}}},
        },
        "per_problem": {
            "best_of_n": {"weighted": {16: weighted}, "naive": {16: weighted}, "maj": {16: majority}},
            "beam_search": {16: beam},
            "dvts": {16: beam},
        },
        "larger_policy": {"n": 16, "single": 90.0, "majority": 95.0},
    }


def test_summary_block_pools_paired_gains_over_seeds_and_is_plain_json():
    results = [
        seed_result(0, [1] * 6 + [0] * 4, [1] * 4 + [0] * 6, [1] * 5 + [0] * 5),
        seed_result(1, [1] * 8 + [0] * 2, [1] * 5 + [0] * 5, [1] * 5 + [0] * 5),
    ]
    settings = {"tree_ns": [16], "num_search_problems": 10, "large_policy_path": "big"}
    summary = summary_block(results, settings, total_seconds=123.4)
    gain = summary["gain_over_majority_points"][16]
    # Pooled: 14 right vs 9 right over 20 problems.
    assert gain["weighted_bon"]["gain"] == pytest.approx(25.0)
    assert [g["gain"] for g in gain["weighted_bon"]["per_seed"]] == pytest.approx([20.0, 30.0])
    assert gain["beam_search"]["gain"] == pytest.approx(5.0)
    assert summary["accuracy_percent"]["weighted_bon"][16] == {"mean": 70.0, "per_seed": [60.0, 80.0]}
    assert summary["accuracy_percent"]["majority"][16]["mean"] == pytest.approx(45.0)
    assert summary["verification"]["same_prefix_pairs_percent"]["mean"] == pytest.approx(90.0)
    assert summary["verification"]["within_problem_ranking_ceiling_percent"]["mean"] == pytest.approx(90.0)
    assert summary["verification"]["within_problem_ranking_no_wrong_line_percent"]["mean"] == pytest.approx(85.0)
    assert summary["larger_policy"]["single"]["mean"] == 90.0 and summary["larger_policy"]["path"] == "big"
    assert summary["total_seconds"] == 123.4
    assert json.loads(json.dumps(summary))["seeds"] == [0, 1]
    report = "\n".join(gains_markdown(summary))
    assert "+25.0 [" in report and "seed 1" in report and "Larger policy" in report
