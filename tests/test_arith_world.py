"""The arithmetic world: seeded problems, the exact checker, corruptions, labelled layouts, the tokenizer."""

from __future__ import annotations

import random

import pytest

from arith_demo.analysis import auroc, within_problem_ranking
from arith_demo.corruptions import CorruptionMix, classify_error, corrupt
from arith_demo.labeling import LabeledSolution, line_check_rows, processbench_records
from arith_demo.world import (
    DIFFICULTIES,
    ArithProblem,
    Difficulty,
    extract_answer,
    first_error,
    make_problems,
    parse_problem,
    step_labels,
)
from prm.data import processbench_row, validate_rows


def test_problem_text_steps_and_answer():
    problem = ArithProblem(7, (("+", 5), ("*", 3), ("-", 4)))
    assert problem.text == "Start with 7. Add 5. Multiply by 3. Subtract 4."
    assert problem.gold_steps() == ["7 + 5 = 12", "12 * 3 = 36", "36 - 4 = 32", "\\boxed{32}"]
    assert problem.answer == 32
    assert parse_problem(problem.text) == problem


def test_generation_is_seeded_and_respects_difficulty():
    hard = DIFFICULTIES["hard"]
    a, b = make_problems(200, seed=3, difficulty=hard), make_problems(200, seed=3, difficulty=hard)
    assert a == b
    assert a != make_problems(200, seed=4, difficulty=hard)
    assert len({p.text for p in a}) == 200
    for p in a:
        assert hard.min_ops <= len(p.ops) <= hard.max_ops
        assert all(0 <= v < hard.max_value for v in p.values())
    easy = make_problems(100, seed=0, difficulty=DIFFICULTIES["easy"])
    assert {op for p in easy for op, _ in p.ops} <= {"+", "-"}
    with pytest.raises(ValueError, match="ops"):
        Difficulty(ops=("/",))


def test_heldout_problems_can_be_excluded():
    medium = DIFFICULTIES["medium"]
    held = {p.text for p in make_problems(50, seed=1, difficulty=medium)}
    train = make_problems(500, seed=1, difficulty=medium, exclude=held)
    assert not held & {p.text for p in train}


def test_checker_labels_first_error_and_everything_after():
    problem = ArithProblem(7, (("+", 5), ("*", 3), ("-", 4)))
    gold = problem.gold_steps()
    assert step_labels(problem, gold) == [True] * 4 and first_error(problem, gold) == -1
    wrong = ["7 + 5 = 12", "12 * 3 = 35", "35 - 4 = 31", "\\boxed{31}"]
    assert step_labels(problem, wrong) == [True, False, False, False]
    assert first_error(problem, wrong) == 1
    # Skipping an operation, stopping early, or garbage are errors too.
    assert first_error(problem, ["7 + 5 = 12", "12 - 4 = 8", "\\boxed{8}"]) == 1
    assert first_error(problem, gold[:3]) == 2
    assert first_error(problem, ["7 + 5 = 12", "twelve"]) == 1
    assert first_error(problem, [*gold[:3], "\\boxed{32} extra"]) == 3
    assert extract_answer("x \\boxed{12} y \\boxed{-3}") == -3 and extract_answer("no answer") is None


@pytest.mark.parametrize("kind", ["last_digit", "off_by_one", "carry", "near_miss", "copy", "operand", "boxed"])
def test_corruptions_make_exactly_one_first_error_and_are_recognised(kind):
    rng = random.Random(0)
    recognised = 0
    for problem in make_problems(200, seed=5, difficulty=DIFFICULTIES["hard"]):
        steps, error = corrupt(problem, rng, kind)
        assert error >= 0
        assert steps[:error] == problem.gold_steps()[:error]
        assert extract_answer(steps[-1]) != problem.answer or kind in ("copy", "operand")
        recognised += classify_error(problem, steps) == kind
    # A carry error on a one-digit value is an off-by-one, and a near miss of 0 cannot cross a tens boundary (a
    # wrong last digit); everything else is recognised as what it is.
    assert recognised >= (180 if kind == "near_miss" else 190)


def test_corruption_mix_draws_by_weight():
    mix = CorruptionMix({"last_digit": 3.0, "copy": 1.0})
    rng = random.Random(0)
    draws = [mix.draw(rng) for _ in range(4000)]
    assert 0.7 < draws.count("last_digit") / len(draws) < 0.8


def test_layouts_are_valid_and_roundtrip_through_the_processbench_converter():
    problems = make_problems(30, seed=2, difficulty=DIFFICULTIES["medium"])
    rng, mix = random.Random(0), CorruptionMix()
    solutions = []
    for problem in problems:  # each problem's gold solution and two corrupted ones
        solutions.append(LabeledSolution(problem, problem.gold_steps(), -1, "gold"))
        for _ in range(2):
            steps, error = corrupt(problem, rng, mix.draw(rng))
            solutions.append(LabeledSolution(problem, steps, error, "corrupted"))
    rows = line_check_rows(solutions, [], seed=0, error_rate=0.0, mix=mix)
    assert validate_rows(rows) == 90
    records = processbench_records(solutions, "arith")
    for record, solution in zip(records, solutions):
        row = processbench_row(record)
        cut = solution.first_error + 1 if solution.first_error >= 0 else len(solution.steps)
        assert row["labels"] == solution.labels[:cut]
        assert record["final_answer_correct"] == (extract_answer(record["steps"][-1]) == solution.problem.answer)


def test_ranking_metrics_on_hand_made_cases():
    assert auroc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert auroc([0.5], [0.5]) == 0.5
    accuracy, pairs = within_problem_ranking(["a", "a", "a", "b"], [0.9, 0.2, 0.9, 0.1], [True, False, False, False])
    assert pairs == 2 and accuracy == pytest.approx(0.75)


def test_pool_ranking_separates_a_right_answer_reached_through_a_wrong_line():
    from arith_demo.analysis import pool_statistics

    # One problem (2 + 3 = 5): a flawless sample, one that reaches 5 after a wrong line (the PRM rightly scores it
    # low) and one with a wrong answer.
    completions = ["2 + 3 = 5\n\\boxed{5}", "2 + 3 = 6\n\\boxed{5}", "2 + 3 = 6\n\\boxed{6}"]
    scores = [[0.9, 0.9], [0.1, 0.1], [0.2, 0.2]]
    rows = [{"index": 0, "problem": "Start with 2. Add 3.", "completions": completions, "scores": scores}]
    stats = pool_statistics(rows)
    assert stats["ranking"] == pytest.approx(0.5)  # right answers {flawless, lucky} vs {wrong}: 1 and 0
    assert stats["ranking_pairs"] == 2
    assert stats["ranking_ceiling"] == pytest.approx(0.75)  # the exact checker ties the lucky and the wrong sample
    assert stats["ranking_process"] == pytest.approx(1.0)  # {flawless} vs {lucky, wrong}


def test_tokenizer_is_character_level_for_digits_and_renders_the_chat_prompt(tmp_path):
    from transformers import AutoTokenizer

    from arith_demo.policy import build_tokenizer

    build_tokenizer().save_pretrained(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    tokens = tokenizer.tokenize("Start with 7. Multiply by 3.\n21 * 3 = 63\n\\boxed{63}")
    assert "Multiply by" in tokens and "\\boxed" in tokens
    assert [t for t in tokens if t.isdigit()] == list("7321363" + "63")
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Start with 7."}], tokenize=False, add_generation_prompt=True
    )
    assert prompt == "<bos>Start with 7.\n"
    assert tokenizer.decode(tokenizer("12 + 3 = 15")["input_ids"], skip_special_tokens=True) == "12 + 3 = 15"


def test_line_check_rows_label_each_line_by_its_own_arithmetic():
    from arith_demo.corruptions import corrupt_lines
    from arith_demo.labeling import line_check_rows
    from arith_demo.world import step_validity

    problems = make_problems(400, seed=3, difficulty=DIFFICULTIES["medium"])
    rng = random.Random(0)
    wrong = total = 0
    for problem in problems:
        steps = corrupt_lines(problem, rng, error_rate=0.35)
        validity = step_validity(problem, steps)
        wrong += validity[:-1].count(False)
        total += len(validity) - 1
        assert steps[-1].startswith("\\boxed{")
    # Every arithmetic line goes wrong independently at about the requested rate (400 problems, ~1,400 lines).
    assert 0.28 < wrong / total < 0.42
    rows = line_check_rows([], problems, seed=0, error_rate=0.35, mix=CorruptionMix())
    validate_rows(rows)
    for row in rows:
        problem = parse_problem(row["prompt"])
        assert row["labels"] == step_validity(problem, row["completions"])
    # Wrong lines sit at every position, not only first: later lines can be wrong after an earlier error.
    assert any(r["labels"][0] is False and False in r["labels"][1:-1] for r in rows)


def test_line_check_rows_repeat_each_policy_sample_as_asked():
    from arith_demo.labeling import line_check_rows

    problems = make_problems(20, seed=4, difficulty=DIFFICULTIES["medium"])
    wrong = ["7 + 5 = 13", "13 * 3 = 39", "\\boxed{39}"]
    samples = [LabeledSolution(p, p.gold_steps(), -1, "policy") for p in problems[:5]]
    samples.append(LabeledSolution(parse_problem("Start with 7. Add 5. Multiply by 3."), wrong, 0, "policy"))
    rows = line_check_rows(samples, problems[5:], seed=0, error_rate=0.35, mix=CorruptionMix(), sample_copies=3)
    assert len(rows) == 3 * len(samples) + len(problems[5:])
    copies = [r for r in rows if r["completions"] == wrong]
    assert len(copies) == 3 and all(r["labels"] == [False, True, True] for r in copies)


def test_measured_mix_follows_the_policys_mistakes_and_blends_in_the_default_mix():
    from arith_demo.corruptions import CorruptionMix
    from arith_demo.labeling import LabeledSolution, measured_mix
    from arith_demo.world import ArithProblem, first_error

    problem = ArithProblem(7, (("+", 5), ("*", 3)))
    off_by_one = ["7 + 5 = 13", "13 * 3 = 39", "\\boxed{39}"]
    solutions = [LabeledSolution(problem, off_by_one, first_error(problem, off_by_one))] * 4

    def shares(mix):
        total = sum(mix.weights.values())
        return {k: w / total for k, w in mix.weights.items()}

    measured = shares(measured_mix(solutions, smoothing=0.0))
    assert measured["off_by_one"] == pytest.approx(1.0)
    assert shares(measured_mix(solutions, default_weight=1.0)) == pytest.approx(shares(CorruptionMix()))
    half = shares(measured_mix(solutions, smoothing=0.0, default_weight=0.5))
    assert half["off_by_one"] == pytest.approx(0.5 + 0.5 * shares(CorruptionMix())["off_by_one"])
