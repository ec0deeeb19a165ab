"""naive/weighted/maj/pass at n on hand-made pools whose values were worked out by hand (see comments)."""

from __future__ import annotations

import pytest

from eval.pool import (
    GradedPool,
    majority_choice,
    metrics_from_pools,
    naive_choice,
    pool_metrics,
    pool_table,
    subset_sizes,
    weighted_choice,
)
from prm.grading import MathGrader


@pytest.fixture(scope="module")
def grader():
    g = MathGrader(timeout_s=5.0)
    yield g
    g.close()


def _row(index, gold, answers_and_scores, tokens=None):
    completions = [
        f"Step one.\n\nSo \\boxed{{{a}}}" if a is not None else "Step one.\n\nNo idea." for a, _ in answers_and_scores
    ]
    row = {
        "index": index,
        "problem": f"p{index}",
        "answer": gold,
        "completions": completions,
        "scores": [s for _, s in answers_and_scores],
    }
    if tokens is not None:
        row["completion_tokens"] = tokens
    return row


# Problem 0 (gold 5): aggregated scores per strategy
#   c0: 5 [0.9, 0.3]       last .3  min .3  prod .27   mean .6
#   c1: 7 [0.5, 0.5]       last .5  min .5  prod .25   mean .5
#   c2: 5 [0.8, 0.8, 0.8]  last .8  min .8  prod .512  mean .8
#   c3: 7 [0.4, 0.9]       last .9  min .4  prod .36   mean .65
# Problem 1 (gold 1/2): d0 no answer .99, d1 "0.5" .2, d2 "3" .6, d3 "3" .1 (one step each: every strategy agrees)
ROWS = [
    _row(0, "5", [("5", [0.9, 0.3]), ("7", [0.5, 0.5]), ("5", [0.8, 0.8, 0.8]), ("7", [0.4, 0.9])], [10, 20, 30, 40]),
    _row(1, r"\frac{1}{2}", [(None, [0.99]), ("0.5", [0.2]), ("3", [0.6]), ("3", [0.1])], [1, 2, 3, 4]),
]
# Problem 1 alone: naive never right (the top completion has no answer); weighted@2 and maj@2 right (0.5 is the only
# answer), wrong at 4 (3 wins 0.7 vs 0.2, two votes vs one); pass@1 wrong, then right.
EXPECTED = {
    "last": {"naive": {1: 50, 2: 0, 4: 0}, "weighted": {1: 50, 2: 50, 4: 0}},
    "min": {"naive": {1: 50, 2: 0, 4: 50}, "weighted": {1: 50, 2: 50, 4: 50}},
    "prod": {"naive": {1: 50, 2: 50, 4: 50}, "weighted": {1: 50, 2: 100, 4: 50}},
    "mean": {"naive": {1: 50, 2: 50, 4: 50}, "weighted": {1: 50, 2: 100, 4: 50}},
}


@pytest.mark.parametrize("agg", ["last", "min", "prod", "mean"])
def test_hand_made_pool_all_metrics(grader, agg):
    m = pool_metrics(ROWS, agg, grader)
    assert m["naive"] == pytest.approx(EXPECTED[agg]["naive"])
    assert m["weighted"] == pytest.approx(EXPECTED[agg]["weighted"])
    # Votes and pass do not depend on scores. maj@2 of problem 0 is a 1-1 tie: the first answer (5) wins.
    assert m["maj"] == pytest.approx({1: 50, 2: 100, 4: 50})
    assert m["pass"] == pytest.approx({1: 50, 2: 100, 4: 100})
    assert m["generated_tokens"] == pytest.approx({1: 5.5, 2: 16.5, 4: 55.0})  # first n completions' tokens
    assert m["num_problems"] == 2 and m["no_answer_rate"] == pytest.approx(12.5)
    assert m["agg_strategy"] == agg


def test_equivalent_answers_vote_together(grader):
    # 1/2 and 0.5 are one group (0.3 + 0.3 beats 3's 0.5, two votes beat one); by strings they would lose.
    row = _row(0, "0.5", [(r"\frac{1}{2}", [0.3]), ("3", [0.5]), ("0.5", [0.3])])
    m = pool_metrics([row], "last", grader, ns=[3])
    assert m["weighted"] == {3: 100.0} and m["maj"] == {3: 100.0} and m["naive"] == {3: 0.0}


def test_smaller_pools_use_all_they_have_and_rows_without_completions_are_skipped(grader):
    rows = [
        _row(0, "2", [("2", [0.1]), ("3", [0.9]), ("3", [0.9])]),  # N = 3 < 4
        _row(1, "2", [("2", [0.5]), ("2", [0.5]), ("3", [0.4]), ("3", [0.4]), ("3", [0.4])]),
        {"index": 2, "problem": "p", "answer": "1", "completions": [], "scores": []},
    ]
    m = pool_metrics(rows, "last", grader)
    assert sorted(m["maj"]) == [1, 2, 4, 5]  # powers of two, then N itself
    # n=4: problem 0 uses its 3 completions (3 wins), problem 1 has 2 vs 2 (first seen, 2, wins).
    assert m["maj"][4] == 50.0 and m["maj"][5] == 0.0 and m["pass"][5] == 100.0
    assert m["skipped_problems"] == 1 and m["num_problems"] == 2
    assert m["num_completions"] == {"min": 3, "max": 5}


def test_malformed_rows_name_the_row_and_field(grader):
    bad = _row(7, "2", [("2", [0.1]), ("3", [0.9])])
    bad["scores"] = bad["scores"][:1]
    with pytest.raises(ValueError, match=r"index=7.*'scores'"):
        pool_metrics([bad], "last", grader)
    missing = _row(8, "2", [("2", [0.1])])
    del missing["answer"]
    with pytest.raises(ValueError, match=r"index=8.*'answer'"):
        pool_metrics([missing], "last", grader)


def test_selection_rules_and_subset_sizes():
    assert subset_sizes(1) == [1] and subset_sizes(8) == [1, 2, 4, 8] and subset_sizes(6) == [1, 2, 4, 6]
    assert naive_choice(["a", "b", "c"], [0.5, 0.9, 0.9]) == "b"  # earliest of the tied best
    assert naive_choice([None, "b"], [0.9, 0.1]) is None  # the best one has no answer
    assert weighted_choice(["a", "b", "a", None], [0.3, 0.5, 0.3, 5.0]) == "a"
    assert weighted_choice([None], [1.0]) is None
    assert majority_choice(["b", "a", "a", "b"]) == "b"  # tie: first seen
    pools = [GradedPool(["x", "y"], ["x", "y"], [0.2, 0.8], {"x": True, "y": False})]
    assert metrics_from_pools(pools)["naive"] == {1: 100.0, 2: 0.0}
    with pytest.raises(ValueError, match="No problems"):
        metrics_from_pools([])


@pytest.mark.parametrize("method", ["beam_search", "dvts"])
def test_tree_search_pools_report_only_the_budget_that_was_run(grader, method):
    rows = [dict(r, method=method) for r in ROWS]
    metrics = pool_metrics(rows, "last", grader)
    assert all(list(metrics[m]) == [4] for m in ("naive", "weighted", "maj", "pass"))
    assert metrics["methods"] == [method] and "only n = N" in metrics["budgets_note"]
    table = pool_table(metrics)
    assert "weighted@n  4:" in table and "1:" not in table and "only n = N" in table
    # Best-of-N pools keep every prefix size: the first n of N independent samples is a run with budget n.
    best = pool_metrics([dict(r, method="best_of_n") for r in ROWS], "last", grader)
    assert list(best["weighted"]) == [1, 2, 4] and "first n completions" in best["budgets_note"]
