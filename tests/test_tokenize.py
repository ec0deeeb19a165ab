"""The one tokenize function: TRL-identical layout, whole-step truncation, soft labels, real data."""

from __future__ import annotations

from itertools import chain

import pytest

from prm.data import (
    IGNORE_INDEX,
    load_stepwise_dataset,
    read_separator,
    save_separator,
    tokenize_dataset,
    tokenize_row,
)


def trl_reference(row, tokenizer, separator, train_on_last_step_only=False):
    """TRL 0.x-1.10 ``PRMTrainer.tokenize_row`` semantics without truncation, written out as the spec."""
    prompt_ids = tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]
    steps = [tokenizer(s, add_special_tokens=False)["input_ids"] for s in row["completions"]]
    if train_on_last_step_only:
        labels = [-100] * (len(row["labels"]) - 1) + [int(row["labels"][-1])]
    else:
        labels = [int(x) for x in row["labels"]]
    separator_ids = tokenizer.encode(separator, add_special_tokens=False)
    steps = [s + separator_ids for s in steps]
    token_labels = list(chain(*[[-100] * (len(s) - 1) + [y] for s, y in zip(steps, labels)]))
    if tokenizer.bos_token_id is not None:
        prompt_ids = [tokenizer.bos_token_id] + prompt_ids
    return {"input_ids": prompt_ids + list(chain(*steps)), "labels": [-100] * len(prompt_ids) + token_labels}


ROW = {
    "prompt": "Which number is larger, 9.8 or 9.11?",
    "completions": ["11 is greater than 8.", "Hence, 9.11 > 9.8."],
    "labels": [True, False],
}


@pytest.mark.parametrize("separator", ["\n", "\n\n", " ки"])
@pytest.mark.parametrize("last_only", [False, True])
def test_layout_matches_trl_with_deepseek_tokenizer(deepseek_tokenizer, separator, last_only):
    ours = tokenize_row(ROW, deepseek_tokenizer, separator, train_on_last_step_only=last_only)
    reference = trl_reference(ROW, deepseek_tokenizer, separator, train_on_last_step_only=last_only)
    assert ours["input_ids"] == reference["input_ids"]
    assert ours["labels"] == reference["labels"]


def test_label_sits_on_last_token_of_step_plus_separator(deepseek_tokenizer):
    out = tokenize_row(ROW, deepseek_tokenizer, "\n\n")
    ends = [i for i, y in enumerate(out["labels"]) if y != IGNORE_INDEX]
    assert ends == out["step_ends"] and [out["labels"][i] for i in ends] == [1, 0]
    newline_pair = deepseek_tokenizer("\n\n", add_special_tokens=False)["input_ids"]
    for end in ends:
        assert out["input_ids"][end - len(newline_pair) + 1 : end + 1] == newline_pair


def test_no_bos_when_tokenizer_has_none(tiny_tokenizer_dir):
    from prm.testing import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(bos=False)
    out = tokenize_row({"prompt": "ab", "completions": ["c"], "labels": [1]}, tokenizer, "\n")
    assert out["input_ids"] == tokenizer("abc\n", add_special_tokens=False)["input_ids"]


def test_soft_labels_keep_their_value(deepseek_tokenizer):
    row = dict(ROW, labels=[0.25, 1.0])
    out = tokenize_row(row, deepseek_tokenizer)
    assert [y for y in out["labels"] if y != IGNORE_INDEX] == [0.25, 1.0]


def test_truncation_drops_whole_trailing_steps(deepseek_tokenizer):
    full = tokenize_row(ROW, deepseek_tokenizer)
    first_end = full["step_ends"][0]
    for max_length in (first_end + 1, len(full["input_ids"]) - 1):
        cut = tokenize_row(ROW, deepseek_tokenizer, max_length=max_length)
        assert cut["input_ids"] == full["input_ids"][: first_end + 1]
        assert cut["num_steps"] == 1 and cut["dropped_steps"] == 1
        assert [y for y in cut["labels"] if y != IGNORE_INDEX] == [1]
    assert tokenize_row(ROW, deepseek_tokenizer, max_length=first_end)["input_ids"] == []


def test_tokenize_dataset_reports_truncation(deepseek_tokenizer, caplog):
    from datasets import Dataset

    long_prompt = dict(ROW, prompt="word " * 200)
    dataset = Dataset.from_list([ROW, long_prompt, ROW])
    full = tokenize_row(ROW, deepseek_tokenizer)
    with caplog.at_level("WARNING"):
        tokenized, report = tokenize_dataset(dataset, deepseek_tokenizer, max_length=full["step_ends"][0] + 1)
    assert len(tokenized) == 2
    assert (report.rows, report.skipped_rows, report.skipped_row_indices) == (3, 1, [1])
    assert report.dropped_steps == 2 + 2 and report.kept_steps == 2
    assert "dropped 4 of 6 steps and skipped 1 of 3 rows" in caplog.text


def test_train_on_last_step_only_skips_rows_whose_last_step_was_truncated(deepseek_tokenizer):
    from datasets import Dataset

    full = tokenize_row(ROW, deepseek_tokenizer)
    tokenized, report = tokenize_dataset(
        Dataset.from_list([ROW]), deepseek_tokenizer, max_length=full["step_ends"][0] + 1, train_on_last_step_only=True
    )
    assert len(tokenized) == 0 and report.skipped_rows == 1


def test_dataset_dtype_follows_label_kind(deepseek_tokenizer):
    from datasets import Dataset

    hard, _ = tokenize_dataset(Dataset.from_list([ROW]), deepseek_tokenizer)
    soft, _ = tokenize_dataset(Dataset.from_list([dict(ROW, labels=[0.5, 1.0])]), deepseek_tokenizer)
    assert hard.features["labels"].feature.dtype == "int64"
    assert soft.features["labels"].feature.dtype == "float32"
    assert [y for y in soft[0]["labels"] if y != IGNORE_INDEX] == [0.5, 1.0]


def test_real_processbench_tokenized_like_trl(real_data, deepseek_tokenizer):
    dataset = load_stepwise_dataset(str(real_data / "processbench"), split="gsm8k")
    tokenized, report = tokenize_dataset(dataset, deepseek_tokenizer, step_separator="\n\n", num_proc=2)
    assert report.skipped_rows == 0 and report.dropped_steps == 0 and len(tokenized) == 400
    for i in range(0, 400, 37):
        reference = trl_reference(dataset[i], deepseek_tokenizer, "\n\n")
        assert tokenized[i]["input_ids"] == reference["input_ids"]
        assert tokenized[i]["labels"] == reference["labels"]


def test_separator_is_saved_with_the_model_config(tmp_path):
    from transformers import AutoConfig

    from prm.testing import tiny_qwen2_config

    config = tiny_qwen2_config(vocab_size=32)
    save_separator(config, "\n\n")
    config.save_pretrained(tmp_path)
    assert read_separator(str(tmp_path)) == "\n\n"
    assert read_separator(AutoConfig.from_pretrained(tmp_path)) == "\n\n"
    untagged = tmp_path / "untagged"
    tiny_qwen2_config(vocab_size=32).save_pretrained(untagged)
    assert read_separator(str(untagged)) == "\n"


def test_saved_tokenizer_reloads_exactly_beside_a_qwen2_config(tmp_path, deepseek_tokenizer):
    """transformers 5 would swap in Qwen2Tokenizer here and change the ids; prmkit's loader must not."""
    from prm.data import load_tokenizer
    from prm.testing import tiny_qwen2_config

    deepseek_tokenizer.save_pretrained(tmp_path)
    tiny_qwen2_config(vocab_size=len(deepseek_tokenizer)).save_pretrained(tmp_path)
    reloaded = load_tokenizer(str(tmp_path))
    text = "Step 1: 12 + 30 = 42.\n\nSo the answer is \\boxed{42}."
    assert (
        reloaded(text, add_special_tokens=False)["input_ids"]
        == deepseek_tokenizer(text, add_special_tokens=False)["input_ids"]
    )
    assert tokenize_row(ROW, reloaded, "\n\n") == tokenize_row(ROW, deepseek_tokenizer, "\n\n")
