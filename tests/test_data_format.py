"""Validation of the stepwise format and the converters from public layouts."""

from __future__ import annotations

import json

import pytest

from prm.data import (
    StepwiseFormatError,
    convert_dataset,
    decode_separator,
    detect_layout,
    load_stepwise_dataset,
    math_shepherd_row,
    prm800k_row,
    processbench_row,
    validate_rows,
)

GOOD = {"prompt": "1+1?", "completions": ["1+1=2", "So 2."], "labels": [True, 0.75], "id": "q1"}


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"prompt": None}, "prompt", "is missing"),
        ({"completions": None}, "completions", "is missing"),
        ({"labels": None}, "labels", "is missing"),
        ({"labels": [True]}, "labels", "has 1 entries but 'completions' has 2"),
        ({"completions": [], "labels": []}, "completions", "is empty"),
        ({"completions": ["ok", "  "]}, "completions", "step 1 is empty"),
        ({"labels": [True, 1.5]}, "labels", "label 1 is 1.5, outside [0, 1]"),
        ({"labels": [True, -0.1]}, "labels", "outside [0, 1]"),
        ({"labels": [True, float("nan")]}, "labels", "outside [0, 1]"),
        ({"labels": [True, "yes"]}, "labels", "must be a bool or a float"),
        ({"completions": "one string"}, "completions", "must be a list"),
        ({"prompt": 3}, "prompt", "must be a string"),
    ],
)
def test_malformed_row_names_row_and_field(change, field, fragment):
    rows = [dict(GOOD, id="first"), dict(GOOD, **change)]
    with pytest.raises(StepwiseFormatError) as info:
        validate_rows(rows)
    message = str(info.value)
    assert info.value.index == 1 and info.value.field == field
    assert message.startswith("row 1 (id='q1'): field '" + field + "'")
    assert fragment in message


def test_row_without_id_is_named_by_index():
    row = {"prompt": "p", "completions": ["a"], "labels": [2.0]}
    with pytest.raises(StepwiseFormatError, match=r"^row 0: field 'labels'"):
        validate_rows([row])


def test_valid_rows_pass_with_hard_and_soft_labels():
    assert validate_rows([GOOD, {"prompt": "p", "completions": ["a"], "labels": [0]}]) == 2


def test_math_shepherd_conversion():
    record = {
        "input": "Janet has 3 apples. How many? Step 1: 3 + 2 = 5 ки\nStep 2: The answer is: 5 ки",
        "label": "Janet has 3 apples. How many? Step 1: 3 + 2 = 5 +\nStep 2: The answer is: 5 -",
    }
    row = math_shepherd_row(record)
    assert row == {
        "prompt": "Janet has 3 apples. How many?",
        "completions": ["Step 1: 3 + 2 = 5", "Step 2: The answer is: 5"],
        "labels": [True, False],
    }


def test_math_shepherd_label_mismatch_is_an_error():
    record = {"input": "Q? Step 1: a ки", "label": "Q? Step 1: b ?"}
    with pytest.raises(ValueError, match="does not match 'input'"):
        math_shepherd_row(record)


def _prm800k_line(steps, problem="What is 2+2?"):
    return {"question": {"problem": problem}, "label": {"steps": steps, "finish_reason": "found_error"}}


def _step(ratings, chosen=None, human=None):
    completions = [{"text": f"cand{i} r={r}", "rating": r, "flagged": False} for i, r in enumerate(ratings)]
    return {"completions": completions, "chosen_completion": chosen, "human_completion": human}


def test_prm800k_follows_chosen_and_human_completions_and_stops_at_first_error():
    line = _prm800k_line(
        [
            _step([1, -1], chosen=0),
            _step([0], chosen=0),
            _step([-1, -1], human="a human step"),
            _step([-1, 1], chosen=0),
            _step([1], chosen=0),  # after the first error: dropped
        ]
    )
    row = prm800k_row(line)
    assert row["completions"] == ["cand0 r=1", "cand0 r=0", "a human step", "cand0 r=-1"]
    assert row["labels"] == [True, True, True, False]
    assert prm800k_row(line, neutral_label=False)["labels"] == [True, False, True, False]
    assert prm800k_row(line, neutral_label=0.5)["labels"][1] == 0.5


def test_prm800k_all_candidates_wrong_without_choice_ends_with_first_error():
    row = prm800k_row(_prm800k_line([_step([1], chosen=0), _step([-1, -1])]))
    assert row["labels"] == [True, False]
    assert row["completions"][1] == "cand0 r=-1"


def test_prm800k_human_completion_as_dict():
    row = prm800k_row(_prm800k_line([_step([-1], human={"text": "fixed", "rating": None})]))
    assert row == {"prompt": "What is 2+2?", "completions": ["fixed"], "labels": [True]}


def test_prm800k_unusable_lines_are_counted(tmp_path, caplog):
    lines = [
        _prm800k_line([_step([1], chosen=0)]),
        _prm800k_line([_step([None], chosen=0)]),  # unrated: no usable step
        _prm800k_line([]),
    ]
    path = tmp_path / "phase2_train.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines))
    with caplog.at_level("WARNING"):
        dataset = load_stepwise_dataset(str(path))
    assert len(dataset) == 1
    assert "2 of 3 records have no usable step" in caplog.text


def test_processbench_conversion():
    base = {"id": "gsm8k-7", "problem": "P", "steps": ["a", "b", "c"]}
    assert processbench_row({**base, "label": 1}) == {
        "prompt": "P",
        "completions": ["a", "b"],
        "labels": [True, False],
        "id": "gsm8k-7",
    }
    assert processbench_row({**base, "label": -1})["labels"] == [True, True, True]
    with pytest.raises(ValueError, match="label 3 >= 3 steps"):
        processbench_row({**base, "label": 3})


def test_detect_layout_and_unknown_columns():
    assert detect_layout(["prompt", "completions", "labels"]) == "stepwise"
    assert detect_layout(["input", "label"]) == "math_shepherd"
    assert detect_layout(["question", "label", "timestamp"]) == "prm800k"
    assert detect_layout(["id", "problem", "steps", "label"]) == "processbench"
    with pytest.raises(ValueError, match="Cannot tell the layout"):
        detect_layout(["text"])


def test_real_processbench_split_loads_through_the_local_path(real_data):
    dataset = load_stepwise_dataset(str(real_data / "processbench"), split="gsm8k")
    assert len(dataset) == 400
    raw = json.loads((real_data / "processbench" / "gsm8k.json").read_text())
    for record, row in zip(raw[:50], dataset.select(range(50))):
        label = record["label"]
        expected = len(record["steps"]) if label == -1 else label + 1
        assert len(row["completions"]) == expected
        assert row["labels"][-1] == (label == -1)
        assert row["id"] == record["id"]
    assert sum(not row[-1] for row in dataset["labels"]) == 207  # erroneous solutions in the gsm8k split


def test_missing_split_in_local_dir_is_a_clear_error(real_data):
    with pytest.raises(ValueError, match="No split 'nope'"):
        load_stepwise_dataset(str(real_data / "processbench"), split="nope")


def test_convert_dataset_passes_stepwise_through():
    from datasets import Dataset

    dataset = Dataset.from_list([{"prompt": "p", "completions": ["a"], "labels": [True]}])
    assert convert_dataset(dataset) is dataset


@pytest.mark.parametrize(("typed", "expected"), [("\\n", "\n"), ("\\n\\n", "\n\n"), ("\n", "\n"), (" | ", " | ")])
def test_decode_separator(typed, expected):
    assert decode_separator(typed) == expected
