"""ProcessBench evaluation: metric functions on hand-made cases and a tiny PRM on the real gsm8k split."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForTokenClassification

from eval.config import ProcessBenchArguments, VerifierArguments
from eval.processbench import (
    ProcessBenchFormatError,
    format_table,
    load_processbench_split,
    predict_first_error,
    select_threshold,
    summarize,
    sweep_f1,
)
from prm.data import tokenize_row
from tests.conftest import REPO_ROOT


def test_predictions_follow_both_protocols():
    # Argmax protocol: a step is wrong when class 0 wins; a tie (margin 0) goes to class 0, the first maximum, as
    # the benchmark's argmax picks it (test_eval_recipe_on_real_gsm8k checks predictions against a model's argmax).
    assert predict_first_error([1.0, 0.2, -0.1, 3.0], [0.7, 0.55, 0.47, 0.95]) == 2
    assert predict_first_error([0.5, 0.0], [0.62, 0.5]) == 1
    assert predict_first_error([0.5, 2.0], [0.62, 0.88]) == -1
    assert predict_first_error([], []) == -1
    # Threshold protocol: first score below T.
    assert predict_first_error([1.0, 0.2, -0.1], [0.7, 0.55, 0.47], threshold=0.6) == 1
    assert predict_first_error([1.0, 0.2, -0.1], [0.7, 0.55, 0.47], threshold=0.4) == -1


def test_summary_averages_and_sweep_on_hand_made_cases():
    per_split = {
        "gsm8k": {"error_acc": 50.0, "correct_acc": 100.0, "f1": 200 / 3, "num_erroneous": 2, "num_correct": 2},
        "math": {"error_acc": 0.0, "correct_acc": 100.0, "f1": 0.0, "num_erroneous": 4, "num_correct": 4},
    }
    results = summarize(per_split)
    assert results["average_f1"] == pytest.approx(100 / 3)  # unweighted over splits
    assert results["weighted_f1"] == pytest.approx((200 / 3 * 4) / 12)  # by split size
    assert "size-weighted" in results["weighted_f1_note"]
    assert "weighted F1" in format_table(results)

    labels = [-1, 1, 0]
    step_scores = [[0.9, 0.8], [0.9, 0.3, 0.9], [0.45, 0.9]]
    sweep = sweep_f1(labels, step_scores, thresholds=(0.2, 0.5, 0.85))
    # T=0.2: nothing flagged -> correct 1/1, errors 0/2 -> F1 0. T=0.5: all exact -> 100.
    # T=0.85: sol 0 flagged at step 1 (wrong), sol 1 at 0 (wrong), sol 2 at 0 (right): error 50, correct 0.
    assert sweep == {"0.20": 0.0, "0.50": 100.0, "0.85": 0.0}


def test_sweep_threshold_is_never_chosen_on_the_splits_it_is_judged_on():
    sweeps = {
        "gsm8k": {"0.30": 60.0, "0.50": 70.0, "0.70": 50.0},
        "math": {"0.30": 40.0, "0.50": 30.0, "0.70": 55.0},
        "omnimath": {"0.30": 20.0, "0.50": 35.0, "0.70": 30.0},
    }
    tuned = select_threshold(sweeps, "gsm8k")  # best on gsm8k: 0.50, applied everywhere
    assert tuned["thresholds"] == {"gsm8k": 0.5, "math": 0.5, "omnimath": 0.5}
    assert tuned["f1"] == {"gsm8k": 70.0, "math": 30.0, "omnimath": 35.0}
    assert tuned["average_f1_held_out"] == pytest.approx(32.5) and tuned["held_out_splits"] == ["math", "omnimath"]
    assert "tuned on gsm8k" in tuned["rule"]
    # Picking the best average over the reported splits (0.70: 45.0) would flatter every split; cross-fit does not:
    # gsm8k at 0.70 (best on math+omnimath: 42.5), math at 0.50 (gsm8k+omnimath: 52.5), omnimath at 0.70
    # (gsm8k+math: 52.5).
    crossed = select_threshold(sweeps, "cross-fit")
    assert crossed["thresholds"] == {"gsm8k": 0.7, "math": 0.5, "omnimath": 0.7}
    assert crossed["average_f1"] == pytest.approx((50.0 + 30.0 + 30.0) / 3) and "cross-fit" in crossed["rule"]
    with pytest.raises(ValueError, match="not among --splits"):
        ProcessBenchArguments(output_dir="o", splits=["math"], sweep=True)
    with pytest.raises(ValueError, match="at least two"):
        ProcessBenchArguments(output_dir="o", splits=["math"], sweep=True, sweep_selection="cross-fit")


def test_problem_step_join_is_a_chat_plus_minus_setting():
    assert VerifierArguments(model_name_or_path="m").problem_step_join is None  # the verifier's default: " "
    VerifierArguments(model_name_or_path="m", verifier_type="chat-plus-minus", problem_step_join="\\n\\n")
    with pytest.raises(ValueError, match="chat-plus-minus verifiers only"):
        VerifierArguments(model_name_or_path="m", verifier_type="token-cls", problem_step_join="\\n\\n")


def test_malformed_rows_name_row_and_field(tmp_path, real_data):
    rows = json.loads((real_data / "processbench" / "gsm8k.json").read_text())[:3]
    rows[2]["label"] = 7  # beyond the steps
    (tmp_path / "gsm8k.json").write_text(json.dumps(rows))
    with pytest.raises(ProcessBenchFormatError, match=r"row 2 .*'label'"):
        load_processbench_split("gsm8k", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="Unknown splits"):
        ProcessBenchArguments(output_dir="x", splits=["gsm8k", "aime"])


def test_eval_recipe_on_real_gsm8k(tiny_prm_dir, real_data, deepseek_tokenizer, tmp_path):
    from recipes.eval_prm import main

    out = tmp_path / "out"
    results = main(
        ProcessBenchArguments(
            output_dir=str(out), data_dir=str(real_data / "processbench"), splits=["gsm8k"], sweep=True
        ),
        VerifierArguments(model_name_or_path=tiny_prm_dir, batch_token_budget=8192),
    )
    pb = out / "processbench"
    records = [json.loads(line) for line in (pb / "gsm8k.jsonl").read_text().splitlines()]
    assert len(records) == 400
    assert set(records[0]) >= {"id", "label", "prediction", "step_scores", "truncated"}
    on_disk = json.loads((pb / "results.json").read_text())
    assert set(on_disk["gsm8k"]) >= {"error_acc", "correct_acc", "f1"}
    assert on_disk["settings"]["step_separator"] == "\n\n" and on_disk["settings"]["protocol"] == "argmax"
    assert on_disk["average_f1"] == pytest.approx(results["gsm8k"]["f1"])
    assert (pb / "f1_vs_threshold.png").stat().st_size > 1000
    assert set(on_disk["sweep"]["gsm8k"]) == {f"{0.05 * i:.2f}" for i in range(1, 20)}
    chosen = on_disk["threshold_selection"]  # tuned on gsm8k, the default, and said so
    assert chosen["selection"] == "gsm8k" and "tuned on gsm8k" in chosen["rule"]
    assert chosen["f1"]["gsm8k"] == max(on_disk["sweep"]["gsm8k"].values())

    # Metrics agree with the per-solution records.
    errors = [r for r in records if r["label"] != -1]
    assert on_disk["gsm8k"]["error_acc"] == pytest.approx(100 * sum(r["match"] for r in errors) / len(errors))
    assert on_disk["gsm8k"]["num_erroneous"] == 207 and on_disk["gsm8k"]["num_correct"] == 193

    # Predictions are the benchmark's argmax rule on the model's own full forward pass, in the training layout.
    model = AutoModelForTokenClassification.from_pretrained(tiny_prm_dir).eval()
    rows = json.loads((real_data / "processbench" / "gsm8k.json").read_text())
    for row, rec in list(zip(rows, records))[:25]:
        ex = tokenize_row({"prompt": row["problem"], "completions": row["steps"]}, deepseek_tokenizer, "\n\n")
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ex["input_ids"]])).logits[0, ex["step_ends"]]
        step_ok = logits.argmax(-1).tolist()
        expected = step_ok.index(0) if 0 in step_ok else -1
        assert rec["prediction"] == expected
        assert rec["step_scores"] == pytest.approx(logits.softmax(-1)[:, 1].tolist(), abs=1e-5)


def test_eval_recipe_bad_input_exits_with_clear_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "recipes" / "eval_prm.py"), "--model_name_or_path", str(tmp_path / "nope"),
         "--output_dir", str(tmp_path / "out"), "--splits", "gsm8k", "--threshold", "1.5"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "--threshold must be in (0, 1)" in proc.stderr
    assert "Traceback" not in proc.stderr


def fixed_script_input(row: dict, tokenizer, separator: str) -> tuple[list[int], list[int]]:
    """The input of ProcessBench's TRL-PRM script as fixed in commit 05769fa (QwenLM/ProcessBench PR #12), written
    out from its description: problem, each step and the separator tokenized without special tokens; the
    separator after every step, nothing after the problem; a step is scored at the separator's last token."""
    separator_ids = tokenizer.encode(separator, add_special_tokens=False)
    ids = tokenizer(row["problem"], add_special_tokens=False)["input_ids"]
    score_at = []
    for step in row["steps"]:
        ids = ids + tokenizer(step, add_special_tokens=False)["input_ids"] + separator_ids
        score_at.append(len(ids) - 1)
    return ids, score_at


def script_loop_predictions(model, tokenizer, rows, separator: str, prepend: list[int], batch_size: int = 24):
    """The script's prediction loop: batches in input order, right padding, first step whose argmax is 0."""
    predictions = []
    for start in range(0, len(rows), batch_size):
        inputs = [fixed_script_input(row, tokenizer, separator) for row in rows[start : start + batch_size]]
        inputs = [(prepend + ids, [p + len(prepend) for p in at]) for ids, at in inputs]
        width = max(len(ids) for ids, _ in inputs)
        padded = torch.tensor([ids + [tokenizer.pad_token_id] * (width - len(ids)) for ids, _ in inputs])
        with torch.no_grad():
            logits = model(padded).logits
        for i, (_, at) in enumerate(inputs):
            wrong = (logits[i, at].argmax(-1) == 0).nonzero()
            predictions.append(wrong[0].item() if wrong.numel() else -1)
    return predictions


def test_processbench_script_layout_is_the_fixed_script(tiny_prm_dir, real_data, deepseek_tokenizer):
    from prm.verifiers import load_verifier

    tok = deepseek_tokenizer
    assert tok.bos_token_id is not None  # DeepSeek's tokenizer has one: the layouts differ by exactly that token
    rows = json.loads((real_data / "processbench" / "gsm8k.json").read_text())
    problems, solutions = [r["problem"] for r in rows], [r["steps"] for r in rows]
    script = load_verifier(tiny_prm_dir, device="cpu", input_layout="processbench-script")
    training = load_verifier(tiny_prm_dir, device="cpu")
    assert script.step_separator == training.step_separator == "\n\n"

    script_encoded, training_encoded = script.encode(problems, solutions), training.encode(problems, solutions)
    for row, enc, train_enc in zip(rows, script_encoded, training_encoded):
        ids, score_at = fixed_script_input(row, tok, "\n\n")
        assert enc.input_ids == ids and enc.positions == score_at
        assert train_enc.input_ids == [tok.bos_token_id, *ids]
        assert train_enc.positions == [p + 1 for p in score_at]

    # Predictions: each layout equals the script's own loop (batches of 24, right padding) on that input, and
    # the two layouts disagree only where the leading BOS changes the model's argmax.
    model = AutoModelForTokenClassification.from_pretrained(tiny_prm_dir).eval()
    ours_script = [predict_first_error(i.margins, i.scores) for i in script.score_with_info(problems, solutions)]
    ours_training = [predict_first_error(i.margins, i.scores) for i in training.score_with_info(problems, solutions)]
    assert ours_script == script_loop_predictions(model, tok, rows, "\n\n", prepend=[])
    assert ours_training == script_loop_predictions(model, tok, rows, "\n\n", prepend=[tok.bos_token_id])


@pytest.mark.slow
def test_two_processes_give_the_results_of_one(tiny_prm_dir, real_data, tmp_path):
    """Two CPU processes (`accelerate launch --config_file accelerate_configs/ddp.yaml --num_processes 2`, gloo):
    each scores every other row, the main process gathers them back in dataset order, so the records and metrics
    equal a one-process run's."""
    import os

    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    outputs = {}
    for processes in (1, 2):
        out = tmp_path / f"p{processes}"
        proc = subprocess.run(
            [sys.executable, "-m", "accelerate.commands.launch", "--config_file", "accelerate_configs/ddp.yaml",
             "--num_processes", str(processes),
             "recipes/eval_prm.py", "--model_name_or_path", tiny_prm_dir, "--output_dir", str(out),
             "--data_dir", str(real_data / "processbench"), "--splits", "gsm8k", "math", "--limit", "15",
             "--sweep", "true"],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        outputs[processes] = out / "processbench"
    one, two = (json.loads((outputs[p] / "results.json").read_text()) for p in (1, 2))
    assert (one["settings"]["num_processes"], two["settings"]["num_processes"]) == (1, 2)
    for split in ("gsm8k", "math"):
        assert two[split] == one[split]
        records = [
            [json.loads(line) for line in (outputs[p] / f"{split}.jsonl").read_text().splitlines()] for p in (1, 2)
        ]
        assert len(records[0]) == len(records[1]) == 15
        for a, b in zip(*records):
            assert (b["id"], b["label"], b["prediction"]) == (a["id"], a["label"], a["prediction"])
            assert b["step_scores"] == pytest.approx(a["step_scores"], abs=1e-5)
    assert two["sweep"] == one["sweep"] and two["average_f1"] == one["average_f1"]
