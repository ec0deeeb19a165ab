"""add_layers / freeze_layers: a verifier grown on top of a frozen pretrained model (prm.training.layers)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoModelForTokenClassification, AutoTokenizer
from trl import ModelConfig

from prm.testing import tiny_qwen2_config
from prm.training import PRMConfig
from prm.training.pipeline import PRMScriptArguments, build_model, train_from_args
from tests.test_training import learnable_rows, make_args, step_scores

DEPTH = 2


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory, tiny_tokenizer_dir) -> str:
    """A tiny pretrained causal LM, as a policy a user would build a verifier on."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    torch.manual_seed(0)
    config = tiny_qwen2_config(len(tokenizer), num_layers=DEPTH, pad_token_id=tokenizer.pad_token_id)
    path = tmp_path_factory.mktemp("policy")
    AutoModelForCausalLM.from_config(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_grown_model_keeps_the_pretrained_layers_and_trains_only_above_the_frozen_ones(tmp_path, policy_dir):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.json").write_text(json.dumps(learnable_rows(320, seed=1)))
    script_args = PRMScriptArguments(dataset_name=str(data), add_layers=2, freeze_layers=DEPTH)
    model_args = ModelConfig(model_name_or_path=policy_dir)
    pretrained = load_file(f"{policy_dir}/model.safetensors")

    trainer = train_from_args(script_args, make_args(tmp_path, max_steps=60, logging_steps=10), model_args)

    saved = load_file(tmp_path / "out" / "model.safetensors")
    frozen = [n for n in pretrained if n.startswith(("model.embed_tokens.", "model.layers."))]
    assert len(frozen) > DEPTH
    for name in frozen:
        torch.testing.assert_close(saved[name], pretrained[name], rtol=0, atol=0, msg=f"{name} changed")
    new_layers = tuple(f"model.layers.{i}." for i in range(DEPTH, DEPTH + 2))
    trained = [n for n in saved if n.startswith(new_layers)]
    assert len(trained) == 2 * len([n for n in pretrained if n.startswith("model.layers.0.")])
    fresh = build_model(script_args, model_args, make_args(tmp_path), trainer.processing_class)
    assert any(not torch.equal(saved[n], fresh.state_dict()[n]) for n in trained)

    # The saved verifier reloads as a plain 4-layer token classifier that checks steps it has not seen.
    reloaded = AutoModelForTokenClassification.from_pretrained(tmp_path / "out")
    assert reloaded.config.num_hidden_layers == DEPTH + 2
    rows = learnable_rows(64, seed=2)
    scores = step_scores(reloaded, trainer.processing_class, rows)
    hits = [(s > 0.5) == y for row, ss in zip(rows, scores) for s, y in zip(ss, row["labels"])]
    assert sum(hits) / len(hits) > 0.9


def test_frozen_layers_skip_the_backward_pass(policy_dir, tiny_tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    script_args = PRMScriptArguments(add_layers=1, freeze_layers=DEPTH)
    model = build_model(script_args, ModelConfig(model_name_or_path=policy_dir), PRMConfig(seed=0), tokenizer)
    ids = torch.tensor([tokenizer("a b c")["input_ids"]])
    model(input_ids=ids).logits.sum().backward()
    frozen = [p for n, p in model.named_parameters() if n.startswith(("model.embed_tokens", "model.layers.0."))]
    assert frozen and all(p.grad is None and not p.requires_grad for p in frozen)
    assert all(p.grad is not None for n, p in model.named_parameters() if n.startswith(f"model.layers.{DEPTH}."))


@pytest.mark.parametrize(
    ("script", "model", "message"),
    [
        ({"freeze_layers": DEPTH + 1}, {}, "between 1 and the model's 2 layers"),
        ({"freeze_layers": 1}, {"use_peft": True}, "LoRA already freezes"),
        ({"add_layers": 1, "init_from_config": "x.json"}, {"model_name_or_path": None}, "add_layers grows"),
    ],
)
def test_bad_layer_settings_are_refused_with_a_reason(policy_dir, tiny_tokenizer_dir, script, model, message):
    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    model_args = ModelConfig(**{"model_name_or_path": policy_dir, **model})
    with pytest.raises(ValueError, match=message):
        build_model(PRMScriptArguments(**script), model_args, PRMConfig(seed=0), tokenizer)


def test_negative_layer_counts_are_refused():
    with pytest.raises(ValueError, match="freeze_layers must be 0 or more"):
        PRMScriptArguments(freeze_layers=-1)
