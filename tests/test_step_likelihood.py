"""step_likelihood_weight: a PRM that adds its own log-likelihood of each step to the step's logit."""

from __future__ import annotations

import json

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoModelForTokenClassification, AutoTokenizer

from prm.data import build_example, tokenize_dataset
from prm.step_likelihood import CONFIG_KEY, running_step_sums, token_log_likelihoods
from prm.testing import tiny_qwen2_config
from prm.training import PRMDataCollator, PRMTrainer
from prm.verifiers import TokenClassificationVerifier, load_verifier
from tests.test_training import learnable_rows, make_args

WEIGHT = 0.5


@pytest.fixture(scope="module")
def tokenizer(tiny_tokenizer_dir):
    return AutoTokenizer.from_pretrained(tiny_tokenizer_dir)


def tied_model(tokenizer, tie: bool = True):
    torch.manual_seed(0)
    config = tiny_qwen2_config(
        len(tokenizer), num_labels=2, pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=tie
    )
    return AutoModelForTokenClassification.from_config(config)


def test_build_example_marks_each_token_with_its_step():
    truncated = build_example([10, 11], [[20, 21], [22]], [1, 0], [9], bos_token_id=1, max_length=7)
    assert truncated["input_ids"] == [1, 10, 11, 20, 21, 9]  # the second step and its separator do not fit
    assert truncated["step_index"] == [0, 0, 0, 1, 1, 1]
    full = build_example([10, 11], [[20, 21], [22]], [1, 0], [9], bos_token_id=1)
    assert full["step_index"] == [0, 0, 0, 1, 1, 1, 2, 2]
    assert full["step_ends"] == [5, 7]
    # No prompt and no BOS: the first token cannot be scored, and a packed batch keeps it apart from the row before.
    bare = build_example([], [[20, 21], [22]], [1, 0], [9], bos_token_id=None)
    assert bare["step_index"] == [0, 1, 1, 2, 2]


def test_running_sums_restart_at_every_step_and_stay_zero_outside():
    values = torch.tensor([[5.0, 1.0, 2.0, 3.0, 4.0, 0.5, 7.0, 8.0]])
    # prompt, step 1 (2 tokens), step 2 (2 tokens), then a packed second example: prompt, its step 1 (2 tokens)
    index = torch.tensor([[0, 1, 1, 2, 2, 0, 1, 1]])
    expected = torch.tensor([[0.0, 1.0, 3.0, 3.0, 7.0, 0.0, 7.0, 15.0]])
    torch.testing.assert_close(running_step_sums(values, index), expected)


def test_token_log_likelihoods_are_the_language_models(tokenizer, tmp_path):
    model = tied_model(tokenizer)
    model.save_pretrained(tmp_path)
    lm = AutoModelForCausalLM.from_pretrained(tmp_path)  # the same weights, read as a language model
    ids = torch.tensor([tokenizer("Q: 2+2\n4\nso 4\n")["input_ids"]])
    mask = torch.ones_like(ids, dtype=torch.bool)
    with torch.no_grad():
        hidden = model.model(input_ids=ids).last_hidden_state
        got = token_log_likelihoods(hidden, ids, model.get_input_embeddings().weight, mask)
        want = lm(input_ids=ids).logits.log_softmax(-1)[0, :-1].gather(1, ids[0, 1:, None])[:, 0]
    torch.testing.assert_close(got[0, 1:], want, rtol=1e-5, atol=1e-5)
    assert got[0, 0] == 0


def test_trained_prm_records_the_weight_and_every_verifier_scores_as_in_training(tmp_path, tokenizer):
    rows = learnable_rows(320, seed=1)
    args = make_args(tmp_path, max_steps=60, step_likelihood_weight=WEIGHT, per_device_eval_batch_size=8)
    trainer = PRMTrainer(
        model=tied_model(tokenizer),
        args=args,
        train_dataset=Dataset.from_list(rows),
        eval_dataset=Dataset.from_list(learnable_rows(16, seed=3)),
        processing_class=tokenizer,
    )
    trainer.train()
    trainer.save_model()
    saved = tmp_path / "out"
    assert json.loads((saved / "config.json").read_text())[CONFIG_KEY] == WEIGHT
    assert f"adds {WEIGHT} times its own log-likelihood" in (saved / "README.md").read_text()

    verifier = load_verifier(str(saved), device="cpu")
    assert isinstance(verifier, TokenClassificationVerifier) and verifier.step_likelihood_weight == WEIGHT
    test = learnable_rows(64, seed=2)
    scores = verifier.score([r["prompt"] for r in test], [r["completions"] for r in test])
    hits = [(s > 0.5) == y for row, ss in zip(test, scores) for s, y in zip(ss, row["labels"])]
    assert sum(hits) / len(hits) > 0.9

    # The score is the classifier's log-odds plus the weight times the step's log-likelihood, computed here
    # from the same checkpoint read as a plain classifier and as a language model.
    classifier = AutoModelForTokenClassification.from_pretrained(saved).eval()
    lm = AutoModelForCausalLM.from_pretrained(saved).eval()
    ex = build_example(
        tokenizer(test[0]["prompt"], add_special_tokens=False)["input_ids"],
        [tokenizer(s, add_special_tokens=False)["input_ids"] for s in test[0]["completions"]],
        None,
        tokenizer("\n", add_special_tokens=False)["input_ids"],
        tokenizer.bos_token_id,
    )
    ids = torch.tensor([ex["input_ids"]])
    with torch.no_grad():
        head = classifier(input_ids=ids).logits[0].log_softmax(-1)
        token_ll = lm(input_ids=ids).logits[0].log_softmax(-1)[:-1].gather(1, ids[0, 1:, None])[:, 0]
    index = ex["step_index"]
    for k, end in enumerate(ex["step_ends"]):
        step_ll = sum(token_ll[t - 1] for t in range(1, len(index)) if index[t] == k + 1)
        margin = head[end, 1] - head[end, 0] + WEIGHT * step_ll
        assert scores[0][k] == pytest.approx(torch.sigmoid(margin).item(), abs=1e-5)


def test_padding_free_batches_give_the_padded_loss(tmp_path, tokenizer):
    dataset, _ = tokenize_dataset(Dataset.from_list(learnable_rows(6, seed=4)), tokenizer, with_step_index=True)
    features = list(dataset)
    model = tied_model(tokenizer).eval()
    args = make_args(tmp_path, step_likelihood_weight=WEIGHT)
    trainer = PRMTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    losses = []
    for padding_free in (False, True):
        batch = PRMDataCollator(tokenizer.pad_token_id, padding_free=padding_free)(features)
        with torch.no_grad():
            losses.append(trainer.compute_loss(model, batch).item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_untied_models_pretokenized_data_vllm_and_the_prefix_cache_are_refused(tmp_path, tokenizer):
    rows = Dataset.from_list(learnable_rows(8))
    args = make_args(tmp_path, step_likelihood_weight=WEIGHT)
    with pytest.raises(ValueError, match="tie_word_embeddings"):
        PRMTrainer(model=tied_model(tokenizer, tie=False), args=args, train_dataset=rows, processing_class=tokenizer)
    pretokenized, _ = tokenize_dataset(rows, tokenizer)
    with pytest.raises(ValueError, match="with_step_index=True"):
        PRMTrainer(model=tied_model(tokenizer), args=args, train_dataset=pretokenized, processing_class=tokenizer)
    with pytest.raises(ValueError, match="must be positive"):
        make_args(tmp_path, step_likelihood_weight=0.0)

    model = tied_model(tokenizer)
    setattr(model.config, CONFIG_KEY, WEIGHT)
    model.save_pretrained(tmp_path / "prm")
    tokenizer.save_pretrained(tmp_path / "prm")
    from prm.verifiers.prefix_cache import PrefixCachedScorer
    from prm.verifiers.vllm_backend import load_vllm_verifier

    with pytest.raises(ValueError, match="verifier_backend transformers"):
        load_vllm_verifier(str(tmp_path / "prm"), "token-cls")
    with pytest.raises(ValueError, match="prefix_cache false"):
        PrefixCachedScorer(model, tokenizer, "\n")


def test_chunked_log_likelihoods_match_in_value_and_gradient(tokenizer, monkeypatch):
    import prm.step_likelihood as step_likelihood

    model = tied_model(tokenizer)
    ids = torch.tensor([tokenizer("Q: 12*3\n36\n\\boxed{36}\n")["input_ids"]] * 2)
    mask = torch.ones_like(ids, dtype=torch.bool)
    mask[1, :4] = False
    results = []
    for chunk_values in (2**26, 3 * len(tokenizer)):  # one chunk; chunks of 3 rows, recomputed in backward
        monkeypatch.setattr(step_likelihood, "LOGIT_CHUNK_VALUES", chunk_values)
        model.zero_grad()
        hidden = model.model(input_ids=ids).last_hidden_state
        values = token_log_likelihoods(hidden, ids, model.get_input_embeddings().weight, mask)
        values.sum().backward()
        results.append((values.detach(), model.get_input_embeddings().weight.grad.clone()))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])


def test_a_lora_wrapped_prm_scores_like_the_plain_one(tokenizer):
    from peft import LoraConfig, get_peft_model

    model = tied_model(tokenizer).eval()
    setattr(model.config, CONFIG_KEY, WEIGHT)
    rows = learnable_rows(4, seed=5)
    problems, solutions = [r["prompt"] for r in rows], [r["completions"] for r in rows]
    plain = TokenClassificationVerifier.from_model(model, tokenizer).score(problems, solutions)
    # LoRA's B matrices start at zero, so the wrapped model computes the same function through its full forward.
    wrapped = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="TOKEN_CLS"))
    scores = TokenClassificationVerifier.from_model(wrapped, tokenizer).score(problems, solutions)
    for got, want in zip(scores, plain):
        assert got == pytest.approx(want, abs=1e-6)
