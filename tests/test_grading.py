"""Answer extraction, gold answers and math-verify equivalence (bounded in time on pathological input)."""

from __future__ import annotations

import json
import time

import pytest

from prm.grading import MathGrader, extract_answer, gold_answer, last_boxed, normalize_answer


@pytest.fixture(scope="module")
def grader():
    g = MathGrader(timeout_s=3.0)
    yield g
    g.close()


def test_boxed_with_nested_braces_last_one_wins():
    text = r"First \boxed{1}. Then $\boxed{\frac{\sqrt{2}}{2}}$ and finally \boxed{\{1, 2\}} done."
    assert extract_answer(text) == r"\{1, 2\}"
    assert last_boxed(r"\boxed{\frac{a}{b}}") == r"\frac{a}{b}"
    assert last_boxed(r"\fbox{7}") == "7"
    assert last_boxed(r"so \boxed 5 is it") == "5"
    # A boxed group that never closes (generation cut off) is ignored in favour of the complete one before it.
    assert extract_answer(r"\boxed{3} and then \boxed{\frac{1}{2") == "3"


def test_gsm8k_and_answer_is_and_none():
    assert extract_answer("Janet sells 9 eggs.\n#### 1,234\n") == "1,234"
    assert extract_answer("So the answer is $\\frac{1}{2}$.") == r"\frac{1}{2}"
    assert extract_answer("The final answer is: 42") == "42"
    assert extract_answer("The answer is 3. Wait.\nThe answer is 4.") == "4"
    # Minerva style: the math span only, not the sentence after it.
    assert extract_answer("Final Answer: The final answer is $x^2+1$. I hope it is correct.") == "x^2+1"
    assert extract_answer(r"the answer is \(\frac{3}{4}\), as shown") == r"\frac{3}{4}"
    assert extract_answer("So the answer is 1,000. Next we check.") == "1,000"
    assert extract_answer("I do not know") is None
    assert extract_answer("") is None


def test_gold_answers_of_real_datasets(real_data):
    with open(real_data / "gsm8k" / "test.jsonl") as f:
        gsm = [json.loads(next(f)) for _ in range(3)]
    assert gold_answer(gsm[0]["answer"], "gsm8k") == "18"  # Janet's ducks
    assert all(gold_answer(r["answer"]) == gold_answer(r["answer"], "gsm8k") for r in gsm)  # auto: GSM8K by '####'
    with open(real_data / "math500" / "test.jsonl") as f:
        row = json.loads(next(f))
    assert gold_answer(row["answer"], "plain") == row["answer"].strip()
    assert extract_answer(row["solution"]) == row["answer"]  # MATH solutions box their answer
    with pytest.raises(ValueError, match="####"):
        gold_answer("no marker", "gsm8k")
    assert gold_answer("Total: 3 eggs\n#### 1,000", "gsm8k") == "1000"


def test_a_gsm8k_answer_without_its_marker_names_the_row(tmp_path):
    from search.config import DatasetArguments
    from search.runner import load_problems

    path = tmp_path / "gsm.jsonl"
    path.write_text("".join(json.dumps({"question": "q", "answer": a}) + "\n" for a in ["1 + 1\n#### 2", "just 3"]))
    assert [p.answer for p in load_problems(DatasetArguments(dataset_name=str(path)))] == ["2", "just 3"]  # auto
    with pytest.raises(ValueError, match=r"row 1: field 'answer': GSM8K answer has no '#### N' line"):
        load_problems(DatasetArguments(dataset_name=str(path), answer_format="gsm8k"))
    with pytest.raises(ValueError, match="no column 'solution'"):  # a missing answer column is named
        load_problems(DatasetArguments(dataset_name=str(path), answer_column="solution"))


@pytest.mark.parametrize(
    ("pred", "gold", "expected"),
    [
        (r"\frac{1}{2}", "0.5", True),
        ("0.5", r"\dfrac{1}{2}", True),
        (r"\frac12", r"\frac{1}{2}", True),
        ("x=3", "3", True),
        (r"\{2,1\}", r"\{1,2\}", True),
        (r"\frac{\pi}{2}", r"\pi/2", True),
        ("1,000", "1000", True),
        (r"\left( 3, \frac{\pi}{2} \right)", r"\left( 3, \frac{\pi}{2} \right)", True),
        ("2", "3", False),
        (r"\frac{1}{3}", "0.5", False),
        (None, "3", False),
        ("", "3", False),
    ],
)
def test_equivalence(grader, pred, gold, expected):
    assert grader.equivalent(pred, gold) is expected


def test_canonical_forms_group_equivalent_answers(grader):
    assert grader.canonical(r"\frac{1}{2}") == grader.canonical("0.5") == grader.canonical(r"\dfrac12")
    assert grader.canonical("x = 3") == grader.canonical("3")
    assert grader.canonical(r"\{1,2\}") == grader.canonical(r"\{2,1\}")
    assert grader.canonical("2") != grader.canonical("3")
    assert normalize_answer(r"\text{ 5 }\,") == "5"


def test_plain_number_shortcut_agrees_with_math_verify(grader):
    answers = [
        "42",
        "-7",
        "0.5",
        "2.0",
        r"\frac{3}{4}",
        r"-\frac{1}{3}",
        "90^\\circ",
        "1000000007",
        "3.14159",
    ]
    slow = MathGrader(timeout_s=5.0, fast_numbers=False)
    try:
        assert [grader.canonical(a) for a in answers] == [slow.canonical(a) for a in answers]
        pairs = [("42", "42.0"), ("7", "-7"), ("12", "12"), ("5", "6"), ("1000000007", "1000000008")]
        assert [grader.equivalent(p, g) for p, g in pairs] == [slow.equivalent(p, g) for p, g in pairs]
        assert grader.canonical(r"\text{12}") == grader.canonical("12")  # same group, as equivalent() says
    finally:
        slow.close()


def test_pathological_answers_cannot_hang_grading():
    g = MathGrader(timeout_s=1.0)
    try:
        start = time.monotonic()
        # Towers of powers and huge factorials make sympy compute for minutes (some inside C code that math-verify's
        # own signal-based timeout cannot interrupt); each comparison is cut off at the time limit.
        assert g.equivalent(r"9^{9^{9^{9}}}", "5") is False
        assert g.equivalent(r"(x+1)^{100000}", "5") is False
        assert g.canonical(r"9^{9^{9^{9}}}").startswith("str:")
        elapsed = time.monotonic() - start
        assert elapsed < 20, elapsed
        assert g.timeouts >= 2  # cut off by the time limit, not finished by luck
        # The grader recovers (a fresh worker) and still grades normal answers.
        assert g.equivalent(r"\frac{1}{2}", "0.5") is True
        # Very long answers are compared as strings only, never parsed.
        huge = "1+" * 50_000 + "1"
        assert g.equivalent(huge, huge) is True and g.equivalent(huge, "3") is False
    finally:
        g.close()
