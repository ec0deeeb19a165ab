"""Every verifier type on a tiny model built in that shape, checked against a straightforward reference."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, Qwen2Model

from prm.data import tokenize_row
from prm.testing import build_tiny_tokenizer, tiny_qwen2_config
from prm.verifiers import (
    ChatPlusMinusVerifier,
    QwenPRMVerifier,
    StepTagVerifier,
    TokenClassificationVerifier,
    detect_verifier_type,
    length_batches,
    load_verifier,
)

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
PROBLEMS = ["What is 2+3?", "Compute 7*6 and add 1.", "x=4; x^2?"]
SOLUTIONS = [
    ["2+3=5", "The answer is 5."],
    ["7*6=42", "42+1=43", "So 43.", "Done"],
    ["x^2=16"],
]


def _tokenizer(chat: bool = False):
    tok = build_tiny_tokenizer()
    if chat:
        tok.chat_template = CHAT_TEMPLATE
    return tok


def _close(a: list[list[float]], b: list[list[float]], atol: float = 1e-5) -> None:
    assert [len(x) for x in a] == [len(x) for x in b]
    for x, y in zip(a, b):
        torch.testing.assert_close(
            torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64), atol=atol, rtol=0
        )


def _alone(verifier, problems, solutions):
    return [verifier.score([p], [s])[0] for p, s in zip(problems, solutions)]


def test_token_cls_matches_training_layout_and_batching_does_not_change_scores(token_cls_dir):
    verifier = load_verifier(token_cls_dir, device="cpu")
    assert isinstance(verifier, TokenClassificationVerifier)
    assert verifier.step_separator == "\n\n"  # picked up from config.json, not repeated by the user

    scores = verifier.score(PROBLEMS, SOLUTIONS)
    # Reference: the training tokenization and the model's own full forward pass, one solution at a time.
    expected = []
    for problem, steps in zip(PROBLEMS, SOLUTIONS):
        ex = tokenize_row({"prompt": problem, "completions": steps}, verifier.tokenizer, "\n\n")
        with torch.no_grad():
            logits = verifier.model(input_ids=torch.tensor([ex["input_ids"]])).logits[0]
        expected.append(logits.softmax(-1)[ex["step_ends"], 1].tolist())
    _close(scores, expected)
    _close(scores, _alone(verifier, PROBLEMS, SOLUTIONS))
    assert verifier.tokens_processed > 0


def test_token_cls_from_model_and_separator_override(token_cls_dir):
    loaded = load_verifier(token_cls_dir, device="cpu", step_separator="\\n")  # shell-typed escape decoded
    assert loaded.step_separator == "\n"
    in_memory = TokenClassificationVerifier.from_model(loaded.model, loaded.tokenizer)
    assert in_memory.step_separator == "\n\n"
    assert in_memory.device == torch.device("cpu")
    # A different separator is a different input: scores must change.
    assert loaded.score(PROBLEMS, SOLUTIONS) != in_memory.score(PROBLEMS, SOLUTIONS)


def test_context_overflow_scores_the_steps_that_fit(token_cls_dir):
    full = load_verifier(token_cls_dir, device="cpu")
    long_steps = [f"step {i}: " + "a" * 20 for i in range(10)]
    problems, solutions = PROBLEMS + ["p" * 200, "Long one"], SOLUTIONS + [["x"], long_steps]
    full_scores = full.score(problems, solutions)

    short = load_verifier(token_cls_dir, device="cpu", max_length=120)
    info = short.score_with_info(problems, solutions)
    assert info[3].scores == [] and info[3].truncated  # the prompt alone does not fit: no score, no crash
    assert info[4].truncated and 0 < len(info[4].scores) < 10
    kept = len(info[4].scores)
    _close([info[4].scores], [full_scores[4][:kept]])  # the steps that fit are scored exactly as without limit
    assert not any(r.truncated for r in info[:3])


def _qwen_prm_checkpoint(path, head_keys: str = "mlp"):
    torch.manual_seed(1)
    tok = _tokenizer(chat=True)
    config = tiny_qwen2_config(len(tok))
    body = Qwen2Model(config)
    hidden = config.hidden_size
    if head_keys == "mlp":
        head = torch.nn.Sequential(torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2))
    else:  # a head the loader does not know
        head = torch.nn.Sequential(
            torch.nn.Linear(hidden, 4), torch.nn.Tanh(), torch.nn.Linear(4, 4), torch.nn.Linear(4, 2)
        )
    tensors = {f"model.{k}": v.contiguous() for k, v in body.state_dict().items()}
    tensors.update({f"score.{k}": v.contiguous() for k, v in head.state_dict().items()})
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    cfg = config.to_dict()
    # As published: remote code is declared, and must not be needed.
    cfg.update(
        architectures=["Qwen2ForProcessRewardModel"],
        auto_map={"AutoModel": "modeling_qwen2_rm.Qwen2ForProcessRewardModel"},
    )
    (path / "config.json").write_text(json.dumps(cfg))
    tok.save_pretrained(path)
    return body, head, tok


def test_qwen_prm_loads_head_natively_and_matches_reference(tmp_path):
    body, head, tok = _qwen_prm_checkpoint(tmp_path)
    verifier = load_verifier(str(tmp_path), device="cpu")  # the saved tiny tokenizer, despite the qwen2 type
    assert isinstance(verifier, QwenPRMVerifier)
    scores = verifier.score(PROBLEMS, SOLUTIONS)

    expected = []
    for problem, steps in zip(PROBLEMS, SOLUTIONS):
        messages = [
            {"role": "system", "content": verifier.system_prompt},
            {"role": "user", "content": problem},
            {"role": "assistant", "content": "<extra_0>".join(steps) + "<extra_0>"},
        ]
        ids = tok(tok.apply_chat_template(messages, tokenize=False), return_tensors="pt")["input_ids"]
        with torch.no_grad():
            probs = head(body(input_ids=ids).last_hidden_state).softmax(-1)[0]
        expected.append(probs[ids[0] == tok.convert_tokens_to_ids("<extra_0>"), 1].tolist())
    _close(scores, expected)
    _close(scores, _alone(verifier, PROBLEMS, SOLUTIONS))


def test_qwen_prm_unknown_head_requires_trust_remote_code(tmp_path):
    _qwen_prm_checkpoint(tmp_path, head_keys="other")
    with pytest.raises(ValueError, match="trust_remote_code"):
        load_verifier(str(tmp_path), device="cpu", tokenizer=_tokenizer(chat=True))


@pytest.fixture(scope="module")
def causal_lm():
    torch.manual_seed(2)
    tok = _tokenizer(chat=True)
    model = AutoModelForCausalLM.from_config(tiny_qwen2_config(len(tok)))
    return model.eval(), tok


def test_step_tag_matches_reference(causal_lm):
    model, tok = causal_lm
    verifier = StepTagVerifier(model, tok)
    scores = verifier.score(PROBLEMS, SOLUTIONS)
    tag_id = tok.convert_tokens_to_ids("ки")
    good, bad = tok.convert_tokens_to_ids("+"), tok.convert_tokens_to_ids("-")
    expected = []
    for problem, steps in zip(PROBLEMS, SOLUTIONS):
        text = problem + " " + "\n".join(f"{s} ки" for s in steps)  # Math-Shepherd's input format
        ids = tok(text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0]
        expected.append(logits[ids[0] == tag_id][:, [good, bad]].softmax(-1)[:, 0].tolist())
    _close(scores, expected)
    _close(scores, _alone(verifier, PROBLEMS, SOLUTIONS))

    custom = StepTagVerifier(model, tok, step_tag="#", good_token="y", bad_token="n")
    assert [len(s) for s in custom.score(PROBLEMS, SOLUTIONS)] == [2, 4, 1]
    assert custom.score(PROBLEMS, SOLUTIONS) != scores


def test_chat_plus_minus_single_pass_equals_per_step_calls(causal_lm):
    model, tok = causal_lm
    verifier = ChatPlusMinusVerifier(model, tok)
    scores = verifier.score(PROBLEMS, SOLUTIONS)
    good, bad = tok.convert_tokens_to_ids("+"), tok.convert_tokens_to_ids("-")
    expected = []
    calls = 0
    for problem, steps in zip(PROBLEMS, SOLUTIONS):
        per_step = []
        for k in range(len(steps)):
            # The reference protocol: the conversation up to user turn k, previous answers "+", then ask.
            messages = verifier.messages(problem, steps, upto=k + 1)[:-1]
            ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            ids = tok(ids, add_special_tokens=False, return_tensors="pt")["input_ids"]
            with torch.no_grad():
                last = model(input_ids=ids).logits[0, -1, [good, bad]]
            per_step.append(last.softmax(-1)[0].item())
            calls += 1
        expected.append(per_step)
    _close(scores, expected)
    assert calls == 7
    # One forward pass per solution: the tokens run equal the three full conversations, not 7 growing prefixes.
    assert verifier.tokens_processed == sum(len(e.input_ids) for e in verifier.encode(PROBLEMS, SOLUTIONS))

    short = ChatPlusMinusVerifier(model, tok, max_length=60)
    info = short.score_with_info(PROBLEMS, SOLUTIONS)
    assert info[1].truncated and len(info[1].scores) < 4
    _close([info[1].scores], [scores[1][: len(info[1].scores)]])


def test_length_batches_respect_budget_and_cover_every_row_once():
    lengths = [5, 300, 40, 41, 7, 300, 120, 1000, 2]
    batches = length_batches(lengths, token_budget=400)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 400
    assert batches[0] == [7]  # longest first, alone since it exceeds the budget
    assert len(length_batches(lengths, token_budget=10**6, max_batch_size=4, min_length_fraction=0.0)) == 3


def test_length_batches_bound_the_padding_whatever_the_budget():
    lengths = [1000 - 7 * i for i in range(120)]  # 1000 down to 167: one batch would be half padding
    batches = length_batches(lengths, token_budget=10**6)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded < 1.1 * sum(lengths)
    assert all(min(lengths[i] for i in b) >= 0.9 * max(lengths[i] for i in b) for b in batches)
    assert len(length_batches(lengths, token_budget=10**6, min_length_fraction=0.0)) == 1


def test_detect_verifier_type():
    assert detect_verifier_type("x", {"architectures": ["Qwen2ForTokenClassification"]}) == "token-cls"
    assert (
        detect_verifier_type("Qwen/Qwen2.5-Math-PRM-7B", {"architectures": ["Qwen2ForProcessRewardModel"]})
        == "qwen-prm"
    )
    assert (
        detect_verifier_type("peiyi9979/math-shepherd-mistral-7b-prm", {"architectures": ["MistralForCausalLM"]})
        == "step-tag"
    )
    assert (
        detect_verifier_type("RLHFlow/Llama3.1-8B-PRM-Mistral-Data", {"architectures": ["LlamaForCausalLM"]})
        == "chat-plus-minus"
    )
    with pytest.raises(ValueError, match="--verifier_type"):
        detect_verifier_type("my/causal-prm", {"architectures": ["LlamaForCausalLM"]})


def test_last_layer_shortcut_equals_full_forward(causal_lm):
    from transformers import MistralConfig, MistralModel

    from prm.verifiers.last_layer import last_layer_at_positions, supports_last_layer_at_positions

    model, _ = causal_lm
    body = model.model
    assert supports_last_layer_at_positions(body)
    torch.manual_seed(3)
    ids = torch.randint(5, 100, (3, 40))
    rows = torch.tensor([0, 0, 0, 1, 2, 2])
    positions = torch.tensor([3, 17, 39, 0, 25, 30])
    with torch.no_grad():
        full = body(input_ids=ids, use_cache=False).last_hidden_state[rows, positions]
        short = last_layer_at_positions(body, ids, rows, positions, use_cache=False)
    torch.testing.assert_close(short, full, atol=1e-5, rtol=1e-5)
    windowed = MistralModel(MistralConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                          num_attention_heads=4, num_key_value_heads=2, sliding_window=8))  # fmt: skip
    assert not supports_last_layer_at_positions(windowed)  # falls back to the stock forward


def test_unknown_input_layout_is_a_clear_error(token_cls_dir):
    with pytest.raises(ValueError, match="input_layout"):
        load_verifier(token_cls_dir, device="cpu", input_layout="other")


def test_missing_local_checkpoint_is_a_clear_error(tmp_path):
    from prm.verifiers import load_verifier

    with pytest.raises(FileNotFoundError, match="No model directory at"):
        load_verifier(str(tmp_path / "nope"))


def test_chat_plus_minus_joins_problem_and_first_step_as_the_authors_and_ignores_the_clock(causal_lm, monkeypatch):
    from tests.test_generators import DATED_TEMPLATE, freeze_clock

    model, tok = causal_lm
    default = ChatPlusMinusVerifier(model, tok)
    # RLHFlow's own usage: problem + " " + first step in the first user turn; later steps alone.
    assert [m["content"] for m in default.messages("P?", ["s1", "s2"])] == ["P? s1", "+", "s2", "+"]
    blank_line = ChatPlusMinusVerifier(model, tok, problem_step_join="\n\n")  # ProcessBench's script
    assert blank_line.messages("P?", ["s1"])[0]["content"] == "P?\n\ns1"
    assert blank_line.score(PROBLEMS, SOLUTIONS) != default.score(PROBLEMS, SOLUTIONS)

    dated_tok = copy.deepcopy(tok)  # the same tokenizer with a template that prints a date
    dated_tok.chat_template = DATED_TEMPLATE
    texts = []
    for day in [(2025, 1, 1), (2031, 6, 15)]:
        freeze_clock(monkeypatch, *day)
        texts.append(ChatPlusMinusVerifier(model, dated_tok).build_text(PROBLEMS[0], SOLUTIONS[0]))
    assert texts[0] == texts[1] and "Today Date: 26 Jul 2024" in texts[0][0]
