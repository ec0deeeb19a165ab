"""ProcessBenchCallback with a plain transformers.Trainer on a tiny token classifier."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import (
    AutoModelForTokenClassification,
    DataCollatorForTokenClassification,
    Trainer,
    TrainingArguments,
)

from eval.callback import RESULTS_FILE, ProcessBenchCallback
from prm.data import load_stepwise_dataset, save_separator, tokenize_dataset, tokenize_row
from prm.testing import tiny_llama_config
from prm.verifiers import TokenClassificationVerifier


def _tiny_model(tokenizer):
    torch.manual_seed(0)
    config = tiny_llama_config(
        len(tokenizer),
        hidden_size=16,
        num_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        num_labels=2,
        pad_token_id=tokenizer.pad_token_id,
    )
    save_separator(config, "\n\n")
    return AutoModelForTokenClassification.from_config(config)


def test_callback_evaluates_at_train_end_and_on_evaluate(tmp_path, real_data, deepseek_tokenizer):
    tok = deepseek_tokenizer
    data = load_stepwise_dataset(str(real_data / "processbench"), split="math").select(range(16))
    train, _ = tokenize_dataset(data, tok, step_separator="\n\n", max_length=512)
    model = _tiny_model(tok)
    callback = ProcessBenchCallback(
        data_dir=str(real_data / "processbench"), splits=["gsm8k"], limit=12, on_evaluate=True
    )
    args = TrainingArguments(
        output_dir=str(tmp_path / "run"),
        max_steps=4,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        eval_strategy="steps",
        eval_steps=2,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=train.select(range(4)),
        data_collator=DataCollatorForTokenClassification(tok),
        processing_class=tok,
        callbacks=[callback],
    )
    trainer.train()

    saved = json.loads((tmp_path / "run" / RESULTS_FILE).read_text())
    assert saved["settings"]["global_step"] == 4
    assert saved["settings"]["step_separator"] == "\n\n"  # from the trained model's config
    assert saved["gsm8k"]["num_erroneous"] + saved["gsm8k"]["num_correct"] == 12
    logged = [h for h in trainer.state.log_history if "processbench/average_f1" in h]
    assert [h["step"] for h in logged] == [2, 4, 4]  # two evaluations during training, then train end

    metrics = trainer.evaluate()
    assert metrics["eval_processbench_gsm8k_f1"] == pytest.approx(callback.results["gsm8k"]["f1"])

    # The callback's numbers are the benchmark's argmax rule on the final model's own forward pass, counted by hand.
    model = trainer.model.eval()
    rows = json.loads((real_data / "processbench" / "gsm8k.json").read_text())[:12]
    matches = {True: [], False: []}  # keyed by "the solution has an error"
    with torch.no_grad():
        for row in rows:
            ex = tokenize_row({"prompt": row["problem"], "completions": row["steps"]}, tok, "\n\n")
            logits = model(input_ids=torch.tensor([ex["input_ids"]])).logits[0, ex["step_ends"]]
            step_ok = logits.argmax(-1).tolist()
            prediction = step_ok.index(0) if 0 in step_ok else -1
            matches[row["label"] != -1].append(prediction == row["label"])

    def percent(hits: list[bool]) -> float:
        return 100 * sum(hits) / len(hits) if hits else 0.0  # ProcessBench's convention for an empty class

    assert (saved["gsm8k"]["num_erroneous"], saved["gsm8k"]["num_correct"]) == (
        len(matches[True]),
        len(matches[False]),
    )
    assert saved["gsm8k"]["error_acc"] == pytest.approx(percent(matches[True]))
    assert saved["gsm8k"]["correct_acc"] == pytest.approx(percent(matches[False]))

    # Scoring hands the model back in the mode it found it (the callback scores the model being trained).
    verifier = TokenClassificationVerifier.from_model(trainer.model, tok)
    trainer.model.train()
    verifier.score([rows[0]["problem"]], [rows[0]["steps"]])
    assert trainer.model.training


def test_callback_rejects_missing_data_before_training(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        ProcessBenchCallback(data_dir=str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="Unknown ProcessBench splits"):
        ProcessBenchCallback(data_dir=str(tmp_path), splits=["gsm8k", "aime"])
