"""PRMTrainer on tiny models built from config: learning, soft labels, LoRA, resume, padding-free, loss scaling."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForTokenClassification, AutoTokenizer

from prm.data import read_separator, tokenize_row
from prm.testing import tiny_qwen2_config
from prm.training import PRMConfig, PRMDataCollator, PRMTrainer, prm_loss_sum

REPO = Path(__file__).resolve().parents[1]
FILLER = "abcdefghijklmnopqrstuvwxyz0123456789 "


def learnable_rows(n: int, seed: int = 0, soft: bool = False) -> list[dict]:
    """Steps containing the letter 'X' are wrong, others right: the label is a function of the step's tokens."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        steps, labels = [], []
        for _ in range(rng.randint(1, 4)):
            body = "".join(rng.choice(FILLER) for _ in range(rng.randint(3, 12)))
            wrong = rng.random() < 0.5
            cut = rng.randint(0, len(body))
            steps.append(body[:cut] + ("X" if wrong else "Y") + body[cut:])
            labels.append((0.2 if wrong else 0.8) if soft else (not wrong))
        prompt = "Q: " + "".join(rng.choice(FILLER) for _ in range(rng.randint(2, 10)))
        rows.append({"prompt": prompt, "completions": steps, "labels": labels})
    return rows


@pytest.fixture(scope="module")
def tokenizer(tiny_tokenizer_dir):
    return AutoTokenizer.from_pretrained(tiny_tokenizer_dir)


def tiny_model(tokenizer, seed: int = 0, **config_kwargs):
    torch.manual_seed(seed)
    config = tiny_qwen2_config(len(tokenizer), num_labels=2, pad_token_id=tokenizer.pad_token_id, **config_kwargs)
    return AutoModelForTokenClassification.from_config(config)


def make_args(tmp_path, **overrides) -> PRMConfig:
    values = {
        "output_dir": str(tmp_path / "out"),
        "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 16,
        "learning_rate": 3e-3,
        "max_steps": 10,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "seed": 0,
        "lr_scheduler_type": "constant",
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
    }
    values.update(overrides)
    return PRMConfig(**values)


def step_scores(model, tokenizer, rows, separator="\n") -> list[list[float]]:
    model.eval()
    scores = []
    with torch.no_grad():
        for row in rows:
            example = tokenize_row(row, tokenizer, step_separator=separator)
            logits = model(input_ids=torch.tensor([example["input_ids"]])).logits[0]
            probs = torch.softmax(logits.float(), -1)[:, 1]
            scores.append([probs[i].item() for i in example["step_ends"]])
    return scores


def test_training_learns_a_step_dependent_label(tmp_path, tokenizer):
    train = Dataset.from_list(learnable_rows(320, seed=1))
    test = Dataset.from_list(learnable_rows(64, seed=2))
    args = make_args(tmp_path, max_steps=70, eval_strategy="no")
    trainer = PRMTrainer(
        model=tiny_model(tokenizer), args=args, train_dataset=train, eval_dataset=test, processing_class=tokenizer
    )
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()
    assert before["eval_step_accuracy"] < 0.7
    assert after["eval_step_accuracy"] > 0.9, (before, after)
    assert after["eval_first_error_f1"] > before["eval_first_error_f1"] + 20
    assert after["eval_loss"] < before["eval_loss"] - 0.3
    assert 0.8 < after["eval_wrong_step_recall"] <= 1.0


def test_soft_labels_train_towards_the_target_probability(tmp_path, tokenizer):
    rows = learnable_rows(240, seed=3, soft=True)
    train = Dataset.from_list(rows)
    trainer = PRMTrainer(
        model=tiny_model(tokenizer),
        args=make_args(tmp_path, max_steps=60),
        train_dataset=train,
        processing_class=tokenizer,
    )
    assert trainer.train_dataset.features["labels"].feature.dtype == "float32"
    trainer.train()
    scores = step_scores(trainer.model, tokenizer, rows[:40])
    wrong = [s for row, ss in zip(rows[:40], scores) for label, s in zip(row["labels"], ss) if label < 0.5]
    right = [s for row, ss in zip(rows[:40], scores) for label, s in zip(row["labels"], ss) if label > 0.5]
    # A soft target of 0.2/0.8 is matched in probability, not pushed to 0/1 as hard labels would be.
    assert abs(sum(wrong) / len(wrong) - 0.2) < 0.1
    assert abs(sum(right) / len(right) - 0.8) < 0.1


def test_soft_loss_equals_hard_loss_for_zero_one_targets():
    logits = torch.randn(2, 5, 2)
    hard = torch.tensor([[-100, 1, -100, 0, 1], [0, -100, -100, -100, 1]])
    soft = hard.float()
    hard_sum, hard_count = prm_loss_sum(logits, hard)
    soft_sum, soft_count = prm_loss_sum(logits, soft)
    assert hard_count == soft_count == 5
    torch.testing.assert_close(hard_sum, soft_sum)
    expected = torch.nn.functional.cross_entropy(logits.view(-1, 2), hard.view(-1), reduction="sum")
    torch.testing.assert_close(hard_sum, expected)


def test_lora_trains_merges_and_reloads_as_plain_model(tmp_path, tokenizer):
    from peft import LoraConfig

    rows = learnable_rows(160, seed=4)
    args = make_args(tmp_path, max_steps=25, step_separator="\\n\\n", learning_rate=1e-2)
    peft_config = LoraConfig(task_type="TOKEN_CLS", r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])
    model = tiny_model(tokenizer)
    head_before = model.score.weight.detach().clone()
    trainer = PRMTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    trainer.train()
    before_save = step_scores(trainer.model, tokenizer, rows[:8], separator="\n\n")
    trainer.save_model(args.output_dir)

    reloaded = AutoModelForTokenClassification.from_pretrained(args.output_dir)
    assert not any("lora" in name for name, _ in reloaded.named_parameters())
    assert not torch.equal(reloaded.score.weight, head_before), "the classification head must be trained in full"
    assert read_separator(args.output_dir) == "\n\n"
    after_reload = step_scores(reloaded, tokenizer, rows[:8], separator="\n\n")
    for a, b in zip(before_save, after_reload):
        assert a == pytest.approx(b, abs=1e-5)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "LoRA" in card and json.dumps("\n\n") in card


def _losses(trainer) -> list[float]:
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


@pytest.mark.parametrize("group_by_length", [False, True])
def test_resume_from_checkpoint_matches_uninterrupted_run(tmp_path, tokenizer, group_by_length):
    # 40 rows = 5 steps per epoch: the checkpoint at step 4 and the resumed steps cross an epoch boundary.
    train = Dataset.from_list(learnable_rows(40, seed=5))
    full_args = make_args(tmp_path / "full", max_steps=8, group_by_length=group_by_length)
    full = PRMTrainer(model=tiny_model(tokenizer), args=full_args, train_dataset=train, processing_class=tokenizer)
    full.train()

    part_args = make_args(
        tmp_path / "part", max_steps=8, save_strategy="steps", save_steps=4, group_by_length=group_by_length
    )
    interrupted = PRMTrainer(
        model=tiny_model(tokenizer), args=part_args, train_dataset=train, processing_class=tokenizer
    )

    class StopAt4(__import__("transformers").TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 4:
                control.should_training_stop = True

    interrupted.add_callback(StopAt4())
    interrupted.train()
    assert interrupted.state.global_step == 4

    resumed = PRMTrainer(
        model=tiny_model(tokenizer, seed=123), args=part_args, train_dataset=train, processing_class=tokenizer
    )
    resumed.train(resume_from_checkpoint=True)
    assert resumed.state.global_step == 8
    assert _losses(resumed)[-4:] == pytest.approx(_losses(full)[-4:], rel=1e-5)
    for (name, p_full), (_, p_resumed) in zip(full.model.named_parameters(), resumed.model.named_parameters()):
        torch.testing.assert_close(p_full, p_resumed, msg=name)


def test_padding_free_loss_equals_padded_loss(tokenizer):
    rows = learnable_rows(12, seed=6)
    examples = [tokenize_row(r, tokenizer) for r in rows]
    model = tiny_model(tokenizer, attn_implementation="sdpa").eval()
    padded = PRMDataCollator(pad_token_id=tokenizer.pad_token_id)(examples)
    packed = PRMDataCollator(pad_token_id=tokenizer.pad_token_id, padding_free=True)(examples)
    assert packed["input_ids"].shape[0] == 1 and "attention_mask" not in packed
    assert packed["input_ids"].numel() < padded["input_ids"].numel()
    with torch.no_grad():
        loss_padded = prm_loss_sum(
            model(**{k: v for k, v in padded.items() if k != "labels"}).logits, padded["labels"]
        )
        out = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False)
        loss_packed = prm_loss_sum(out.logits, packed["labels"])
    assert loss_padded[1] == loss_packed[1]
    torch.testing.assert_close(loss_packed[0], loss_padded[0], rtol=1e-5, atol=1e-5)


def test_padding_free_training_matches_padded_training(tmp_path, tokenizer):
    train = Dataset.from_list(learnable_rows(48, seed=7))
    runs = {}
    for padding_free in (False, True):
        args = make_args(tmp_path / str(padding_free), max_steps=4, padding_free=padding_free)
        trainer = PRMTrainer(model=tiny_model(tokenizer), args=args, train_dataset=train, processing_class=tokenizer)
        trainer.train()
        runs[padding_free] = _losses(trainer)
    assert runs[True] == pytest.approx(runs[False], rel=1e-4)


def test_padding_free_refuses_an_attention_that_cannot_isolate_sequences(tmp_path, tokenizer):
    model = tiny_model(tokenizer)
    model.config._attn_implementation = "paged|sdpa"
    with pytest.raises(ValueError, match="padding_free=True needs an attention implementation"):
        PRMTrainer(
            model=model,
            args=make_args(tmp_path, padding_free=True),
            train_dataset=Dataset.from_list(learnable_rows(8)),
            processing_class=tokenizer,
        )


def test_gradient_accumulation_gives_the_same_loss_and_weights(tmp_path, tokenizer):
    """transformers#47688: token classifiers drop num_items_in_batch; the loss must not scale with GA."""
    train = Dataset.from_list(learnable_rows(64, seed=8))
    runs = {}
    for ga, batch in ((1, 8), (2, 4)):
        args = make_args(
            tmp_path / str(ga),
            max_steps=4,
            per_device_train_batch_size=batch,
            gradient_accumulation_steps=ga,
            train_sampling_strategy="sequential",
            group_by_length=False,
        )
        trainer = PRMTrainer(model=tiny_model(tokenizer), args=args, train_dataset=train, processing_class=tokenizer)
        trainer.train()
        runs[ga] = (_losses(trainer), [p.detach().clone() for p in trainer.model.parameters()])
    assert runs[2][0] == pytest.approx(runs[1][0], rel=1e-4)
    assert 0.3 < runs[1][0][0] < 1.2  # a 2-class cross-entropy near log(2) at the start, not 2x that
    for p1, p2 in zip(runs[1][1], runs[2][1]):
        torch.testing.assert_close(p1, p2, rtol=1e-4, atol=1e-5)


def test_length_grouping_is_the_default_and_reduces_padding(tmp_path, tokenizer):
    train = Dataset.from_list(learnable_rows(256, seed=9))
    trainer = PRMTrainer(
        model=tiny_model(tokenizer), args=make_args(tmp_path), train_dataset=train, processing_class=tokenizer
    )
    assert trainer.args.group_by_length
    grouped = sum(b["input_ids"].numel() for b in trainer.get_train_dataloader())
    plain = PRMTrainer(
        model=tiny_model(tokenizer),
        args=make_args(tmp_path, group_by_length=False),
        train_dataset=train,
        processing_class=tokenizer,
    )
    random_order = sum(b["input_ids"].numel() for b in plain.get_train_dataloader())
    assert grouped < 0.9 * random_order


def test_length_grouped_batches_come_in_shuffled_order(tmp_path, tokenizer):
    """Grouped batches must not run from long to short (as transformers' sampler orders each mega-batch): a model
    that always ends on its shortest solutions is biased towards them (higher held-out loss, measured)."""
    train = Dataset.from_list(learnable_rows(1000, seed=11))
    trainer = PRMTrainer(
        model=tiny_model(tokenizer),
        args=make_args(tmp_path, per_device_train_batch_size=4),
        train_dataset=train,
        processing_class=tokenizer,
    )
    lengths = [len(x) for x in trainer.train_dataset["input_ids"]]
    batches = [b["input_ids"].shape[1] for b in trainer.get_train_dataloader()]  # padded width = longest row
    assert batches[0] == max(lengths)  # the longest row first: an out-of-memory error shows at once
    rises = sum(b > a for a, b in zip(batches, batches[1:]))
    assert rises > 0.3 * len(batches)  # long-to-short mega-batches would rise about once per 50 batches
    # Still grouped: far less padding than random batches, and the same order each time it is drawn.
    padded = sum(len(batch) * max(lengths[i] for i in batch) for batch in _index_batches(trainer, 4))
    assert padded < 1.15 * sum(lengths)
    assert list(trainer._get_train_sampler()) == list(trainer._get_train_sampler())


def _index_batches(trainer, size: int) -> list[list[int]]:
    order = list(trainer._get_train_sampler())
    batches = [order[i : i + size] for i in range(0, len(order), size)]
    assert sorted(order) == list(range(len(trainer.train_dataset)))  # every row once per epoch
    assert all(len(b) == size for b in batches[:-1])  # a short batch only at the end
    return batches


def test_group_by_length_false_draws_trls_random_batches(tmp_path, tokenizer):
    """TRL's PRMTrainer used the Trainer's RandomSampler; group_by_length=False must draw the same batches."""
    from transformers import Trainer

    train = Dataset.from_list(learnable_rows(64, seed=10))
    args = make_args(tmp_path, group_by_length=False)
    trainer = PRMTrainer(model=tiny_model(tokenizer), args=args, train_dataset=train, processing_class=tokenizer)
    tokenized = trainer.train_dataset
    reference = Trainer(model=tiny_model(tokenizer), args=args, train_dataset=tokenized)
    reference.data_collator = trainer.data_collator
    for ours, theirs in zip(trainer.get_train_dataloader(), reference.get_train_dataloader(), strict=True):
        assert torch.equal(ours["input_ids"], theirs["input_ids"])


def test_default_grouping_refuses_another_sampler_until_turned_off(tmp_path):
    with pytest.raises(ValueError, match="set group_by_length=False"):
        make_args(tmp_path, train_sampling_strategy="sequential")
    assert make_args(tmp_path, train_sampling_strategy="sequential", group_by_length=False).group_by_length is False


# ---- the recipe's command line ----------------------------------------------------------------------------------

# Training configs are the YAMLs whose launch line names this recipe (other recipes keep theirs alongside).
RECIPE_YAMLS = sorted(p for p in REPO.glob("recipes/**/*.yaml") if "recipes/train_prm.py" in p.read_text())


@pytest.mark.parametrize("path", RECIPE_YAMLS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_recipe_config_parses_with_known_keys_only(path):
    from trl import ModelConfig, TrlParser

    from prm.training.pipeline import PRMScriptArguments

    parser = TrlParser((PRMScriptArguments, PRMConfig, ModelConfig), allow_abbrev=False)
    # bf16 recipes target GPUs; parsing them on a CPU-only machine needs use_cpu to pass TrainingArguments checks.
    script_args, training_args, model_args = parser.parse_args_and_config(["--config", str(path), "--use_cpu", "true"])
    assert script_args.dataset_name and training_args.output_dir
    assert training_args.separator in ("\n", "\n\n")
    assert model_args.model_name_or_path or script_args.init_from_config


def run_recipe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "recipes/train_prm.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )


def test_recipe_rejects_unknown_keys_without_a_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset_name: x\noutput_dir: out\nlearning_rat: 1.0\n")
    result = run_recipe("--config", str(bad))
    assert result.returncode == 2
    assert "configuration error" in result.stderr and "learning_rat" in result.stderr
    assert "Traceback" not in result.stderr


def test_recipe_help_explains_separator_escapes():
    result = run_recipe("--help")
    assert result.returncode == 0
    assert "'\\n' (backslash, n) means a newline" in " ".join(result.stdout.split())


# ---- training extras --------------------------------------------------------------------------------------------


def test_bf16_activation_checkpointing_and_tensorboard_logging(tmp_path, tokenizer):
    args = make_args(
        tmp_path,
        max_steps=3,
        bf16=True,
        activation_checkpointing=True,
        report_to="tensorboard",
    )
    model = tiny_model(tokenizer)
    # What actually ran: the dtype the score head computed in, and how often the first layer's MLP ran (the layer
    # is checkpointed as a whole, so its modules run again when backward recomputes it; module hooks do not fire on
    # that replay, hence the wrapped forward).
    head_dtypes, mlp_calls = set(), []
    model.score.register_forward_hook(lambda module, inputs, output: head_dtypes.add(output.dtype))
    mlp = model.model.layers[0].mlp
    mlp_forward = mlp.forward

    def counting_forward(*args, **kwargs):
        mlp_calls.append(mlp.training)
        return mlp_forward(*args, **kwargs)

    mlp.forward = counting_forward
    trainer = PRMTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(learnable_rows(24, seed=10)),
        processing_class=tokenizer,
    )
    trainer.train()
    assert all(0.0 < loss < 2.0 for loss in _losses(trainer))
    assert list((tmp_path / "out").rglob("events.out.tfevents*")), "tensorboard wrote no event file"
    # bf16 autocast was on (the weights stay float32 for the optimizer) ...
    assert head_dtypes == {torch.bfloat16}
    assert model.score.weight.dtype == torch.float32
    # ... and activations were recomputed: each of the 3 steps ran the layer forward, then again in backward.
    assert model.is_activation_checkpointing
    assert mlp_calls == [True] * 2 * 3


def test_train_on_last_step_only_keeps_one_label_per_solution(tmp_path, tokenizer):
    rows = [r for r in learnable_rows(40, seed=11) if len(r["completions"]) > 1]
    trainer = PRMTrainer(
        model=tiny_model(tokenizer),
        args=make_args(tmp_path, train_on_last_step_only=True),
        train_dataset=Dataset.from_list(rows),
        eval_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    for row, labels in zip(rows, trainer.train_dataset["labels"]):
        kept = [x for x in labels if x != -100]
        assert kept == [int(row["labels"][-1])]
    # Evaluation still scores every step.
    for row, labels in zip(rows, trainer.eval_dataset["labels"]):
        assert [x for x in labels if x != -100] == [int(x) for x in row["labels"]]


@pytest.mark.parametrize(("neutral_label", "expected"), [(1.0, True), (0.0, False), (0.5, 0.5)])
def test_prm800k_neutral_steps_follow_neutral_label(tmp_path, neutral_label, expected):
    from prm.training.pipeline import PRMScriptArguments, load_datasets

    def step(text, rating):
        return {"completions": [{"text": text, "rating": rating, "flagged": False}], "chosen_completion": 0}

    record = {
        "question": {"problem": "What is 1 + 1?"},
        "label": {"steps": [step("1 + 1 = 2.", 1), step("So it is two.", 0), step("Answer: 3", -1)]},
    }
    (tmp_path / "phase2_train.jsonl").write_text(json.dumps(record) + "\n")
    script_args = PRMScriptArguments(dataset_name=str(tmp_path), dataset_train_split="phase2_train")
    train, test = load_datasets(script_args, make_args(tmp_path, neutral_label=neutral_label))
    assert test is None
    assert train[0]["labels"] == [True, expected, False]


def test_model_card_names_base_data_separator_version_and_processbench(tmp_path):
    from prm import __version__
    from prm.training.model_card import write_model_card

    (tmp_path / "processbench_results.json").write_text(json.dumps({"average_f1": 12.5, "gsm8k": {"f1": 20.0}}))
    path = write_model_card(
        str(tmp_path),
        args=make_args(tmp_path, step_separator="\\n\\n"),
        base_model="Qwen/Qwen2.5-Math-1.5B-Instruct",
        dataset="peiyi9979/Math-Shepherd",
        metrics={"eval_step_accuracy": 0.75},
    )
    card = Path(path).read_text()
    assert "base_model: Qwen/Qwen2.5-Math-1.5B-Instruct" in card
    assert "- peiyi9979/Math-Shepherd" in card
    assert json.dumps("\n\n") in card
    assert f"prmkit version: {__version__}" in card
    assert '"average_f1": 12.5' in card and "eval_step_accuracy | 0.75" in card


def test_dataset_num_proc_tokenizes_identically(tmp_path, tokenizer):
    train = Dataset.from_list(learnable_rows(64, seed=12))
    datasets = []
    for num_proc in (None, 2):
        trainer = PRMTrainer(
            model=tiny_model(tokenizer),
            args=make_args(tmp_path, dataset_num_proc=num_proc),
            train_dataset=train,
            processing_class=tokenizer,
        )
        datasets.append(trainer.train_dataset.to_dict())
    assert datasets[0] == datasets[1]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("none", None),
        ("false", None),
        ("true", True),
        ("last", True),
        ("out/checkpoint-4", "out/checkpoint-4"),
    ],
)
def test_resume_from_checkpoint_command_line_values(value, expected):
    from prm.training.pipeline import resume_argument

    assert resume_argument(value) == expected
