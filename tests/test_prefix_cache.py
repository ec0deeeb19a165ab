"""Incremental (KV-cached) verifier scores equal full re-scoring, on chains and branching search trees."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch
from transformers import AutoModelForTokenClassification

from prm.testing import build_tiny_tokenizer, tiny_qwen2_config
from prm.verifiers.prefix_cache import PrefixCachedScorer
from prm.verifiers.scoring import ScoreRequest
from prm.verifiers.token_cls import TokenClassificationVerifier

PROBLEMS = ["What is 2+3?", "Compute 7*6 and add one."]
STEPS = [
    ["We add 2 and 3.", "2+3 = 5.", "So the answer is 5.", "Check: 5-3=2.", "Done: \\boxed{5}"],
    ["7*6 = 42.", "42 + 1 = 43.", "The answer is \\boxed{43}.", "Verified twice.", "End"],
]


@pytest.fixture(scope="module")
def prm(tmp_path_factory):
    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer()
    config = tiny_qwen2_config(len(tokenizer), num_labels=2)
    path = tmp_path_factory.mktemp("tiny_prm")
    AutoModelForTokenClassification.from_config(config).save_pretrained(path)
    model = AutoModelForTokenClassification.from_pretrained(path, dtype=torch.float32).eval()
    return model, tokenizer


@pytest.fixture
def verifier(prm):
    model, tokenizer = prm
    return TokenClassificationVerifier(model, tokenizer, step_separator="\n")


def assert_close(a: list[float], b: list[float]) -> None:
    assert len(a) == len(b)
    assert max((abs(x - y) for x, y in zip(a, b)), default=0.0) < 1e-4, (a, b)


def test_chain_matches_full_rescoring_and_costs_linear_tokens(verifier):
    scorer = PrefixCachedScorer.from_verifier(verifier)
    for p, (problem, steps) in enumerate(zip(PROBLEMS, STEPS)):
        parent = None
        for j in range(1, len(steps) + 1):
            [res] = scorer.score([ScoreRequest(problem, steps[:j], parent=parent, node=(p, j))])
            [full] = verifier.score([problem], [steps[:j]])
            assert_close(res.scores, full)
            parent = (p, j)
    # Every token (prompt once, each step once) went through the model exactly once.
    verifier.tokens_processed = 0
    verifier.score(PROBLEMS, STEPS)
    assert scorer.tokens_processed == verifier.tokens_processed


def test_branching_tree_with_lookahead_and_release(verifier):
    scorer = PrefixCachedScorer.from_verifier(verifier, max_batch_size=2)  # forces several chunks per parent
    problem = PROBLEMS[0]
    first = ["Let x = 2.", "Let x be two", "We compute 2+3."]
    reqs = [ScoreRequest(problem, [s], node=("a", i)) for i, s in enumerate(first)]
    # Lookahead: score two more steps but keep only the first in the node's state.
    reqs.append(ScoreRequest(problem, [first[0], "Then y = 3.", "x+y=5."], node=("look", 0), keep_steps=1))
    results = scorer.score(reqs)
    full = verifier.score([problem] * 4, [r.steps for r in reqs])
    for res, ref in zip(results, full):
        assert_close(res.scores, ref)

    scorer.release([("a", 0), ("a", 2), ("look", 0)])
    assert ("a", 1) not in scorer._nodes
    second = [
        ScoreRequest(problem, [first[0], "Add 3: 5."], parent=("a", 0), node=("b", 0)),
        ScoreRequest(problem, [first[0], "Add three."], parent=("a", 0), node=("b", 1)),
        ScoreRequest(problem, [first[2], "It is 5."], parent=("a", 2), node=("b", 2)),
        # The lookahead node's state holds one step only: its child continues after that step.
        ScoreRequest(problem, [first[0], "Then y = 4."], parent=("look", 0), node=("b", 3)),
        # A child that adds no step (the generator produced an empty step) keeps its parent's scores.
        ScoreRequest(problem, [first[2]], parent=("a", 2), node=("b", 4)),
    ]
    results = scorer.score(second)
    full = verifier.score([problem] * len(second), [r.steps for r in second])
    for res, ref in zip(results, full):
        assert_close(res.scores, ref)
    assert results[-1].tokens == 0

    scorer.release([("b", 1), ("b", 4)])
    third = [
        ScoreRequest(problem, [first[0], "Add three.", "Five.", "\\boxed{5}"], parent=("b", 1)),
        ScoreRequest(problem, [first[2], "Yes, 5."], parent=("b", 4)),
    ]
    for res, ref in zip(scorer.score(third), verifier.score([problem] * 2, [r.steps for r in third])):
        assert_close(res.scores, ref)
    with pytest.raises(KeyError, match="released"):
        scorer.score([ScoreRequest(problem, [first[0], "x"], parent=("a", 1))])


def test_many_problems_in_one_call(verifier):
    scorer = PrefixCachedScorer.from_verifier(verifier)
    reqs = [ScoreRequest(p, s[:2], node=i) for i, (p, s) in enumerate(zip(PROBLEMS, STEPS))]
    first = scorer.score(reqs)
    reqs2 = [ScoreRequest(p, s, parent=i) for i, (p, s) in enumerate(zip(PROBLEMS, STEPS))]
    second = scorer.score(reqs2)
    full = verifier.score(PROBLEMS, STEPS)
    for a, b, ref in zip(first, second, full):
        assert_close(a.scores, ref[:2])
        assert_close(b.scores, ref)


def test_tokenizer_without_bos_and_multi_token_separator(prm):
    model, _ = prm
    tokenizer = build_tiny_tokenizer(bos=False)
    verifier = TokenClassificationVerifier(model, tokenizer, step_separator="\n\n")
    scorer = PrefixCachedScorer(model, tokenizer, "\n\n")
    [a] = scorer.score([ScoreRequest(PROBLEMS[1], STEPS[1][:3], node="n")])
    [b] = scorer.score([ScoreRequest(PROBLEMS[1], STEPS[1], parent="n")])
    [ref] = verifier.score([PROBLEMS[1]], [STEPS[1]])
    assert_close(a.scores, ref[:3])
    assert_close(b.scores, ref)


@contextmanager
def count_forward_passes(scorer: PrefixCachedScorer):
    calls = [0]
    handle = scorer.body.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    try:
        yield calls
    finally:
        handle.remove()


def test_one_forward_pass_for_a_mixed_tree_frontier(verifier):
    """Children of many parents (several problems, depths, prompt lengths) in one call: one batched pass each
    round, lookahead and empty steps included, and every score equals full re-scoring."""
    problems = PROBLEMS + ["Let f(x) = x^2 + 3x - 10. Find the sum of all real x with f(x) = 0, then double it."]
    pool = ["x = 1.", "Then 3x = 6, so", "f(2) = 0 and f(-5) = 0.", "Sum: -3.", "Hence", "\\boxed{-6}", "ok"]
    rng = torch.Generator().manual_seed(1)

    def pick(k: int) -> list[str]:
        return [pool[int(i)] for i in torch.randint(len(pool), (k,), generator=rng)]

    scorer = PrefixCachedScorer.from_verifier(verifier)
    frontier: list[tuple[str, list[str], object]] = []  # (problem, steps, node)
    next_id = 0
    for round_ in range(4):
        requests = []
        # One problem starts late, so its first steps are batched with other problems' deep nodes.
        if round_ in (0, 2):
            for problem in problems[:2] if round_ == 0 else problems[2:]:
                for k in (1, 2):
                    requests.append(ScoreRequest(problem, pick(k), node=next_id))
                    next_id += 1
        for f, (problem, steps, node) in enumerate(frontier):
            for b in range(2):
                new = pick(1 + (f + b) % 2) if (f + b) % 5 else []  # some children add no step at all
                look = pick(2) if b == 1 else []  # lookahead: scored, not kept
                requests.append(
                    ScoreRequest(problem, steps + new + look, parent=node, node=next_id, keep_steps=len(steps + new))
                )
                next_id += 1
        with count_forward_passes(scorer) as calls:
            results = scorer.score(requests)
        new_prompts = 1 if round_ in (0, 2) else 0
        assert calls[0] == 1 + new_prompts
        full = verifier.score([r.problem for r in requests], [r.steps for r in requests])
        for res, ref in zip(results, full):
            assert_close(res.scores, ref)
        # Keep a varied frontier: every third node, across problems and depths.
        frontier = [(r.problem, r.steps[: r.keep_steps], r.node) for r in requests][::3][:6]
        scorer.release([node for _, _, node in frontier])
    assert {p for p, _, _ in frontier} >= {problems[2]}


def test_chunks_of_max_batch_size_match_one_batch(verifier):
    big = PrefixCachedScorer.from_verifier(verifier)
    small = PrefixCachedScorer.from_verifier(verifier, max_batch_size=3)
    first = [ScoreRequest(p, s[:j], node=(i, j)) for i, (p, s) in enumerate(zip(PROBLEMS, STEPS)) for j in (1, 2, 3)]
    second = [
        ScoreRequest(p, s[: j + 2], parent=(i, j)) for i, (p, s) in enumerate(zip(PROBLEMS, STEPS)) for j in (1, 2, 3)
    ]
    for scorer in (big, small):
        scorer.score(first)
    with count_forward_passes(small) as calls:
        chunked = small.score(second)
    assert calls[0] == 2
    for a, b in zip(big.score(second), chunked):
        assert_close(a.scores, b.scores)
    assert big.tokens_processed == small.tokens_processed
