"""Best-of-N, beam search and DVTS on several problems at once: beam counts, selection by agg_strategy,
token accounting, prefix-cached scoring identical to full re-scoring, and the real transformers generator."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForTokenClassification

from prm.testing import build_tiny_tokenizer, tiny_qwen2_config
from prm.verifiers.aggregation import aggregate_scores
from prm.verifiers.prefix_cache import PrefixCachedScorer
from prm.verifiers.token_cls import TokenClassificationVerifier
from search.beam_search import beam_search
from search.best_of_n import best_of_n
from search.config import SearchConfig
from search.dvts import dvts
from search.generators.base import GenerationCountError
from search.primitives import FullScorer
from tests.search_doubles import ScriptedGenerator, ValueVerifier, step_value

PROBLEMS = ["What is 1+1?", "Add 2 and 3.", "Compute 4*5 now.", "A fourth problem!"]


def solution_of(prompt: str) -> str:
    return prompt.split("\nA:", 1)[1]


def problem_of(prompt: str) -> str:
    return prompt[len("Q: ") :].split("\nA:", 1)[0]


def agg_of(text: str, strategy: str) -> float:
    return aggregate_scores([step_value(s) for s in text.split("\n\n") if s.strip()], strategy)


def test_best_of_n_scores_every_step_and_counts_tokens():
    gen, ver = ScriptedGenerator(), ValueVerifier()
    config = SearchConfig(method="best_of_n", n=4, beam_width=2)
    results = best_of_n(PROBLEMS, gen, FullScorer(ver), config, seed=0)
    assert len(gen.calls) == 1 and ver.calls == 1  # one batched call for all problems
    assert len(gen.calls[0][0]) == len(PROBLEMS) and gen.calls[0][1].n == 4
    for problem, res in zip(PROBLEMS, results):
        assert len(res.beams) == 4
        for beam in res.beams:
            assert len(beam.steps) == 3 + len(problem) % 3
            assert beam.scores == [step_value(s) for s in beam.steps]
            assert beam.complete
        assert res.generated_tokens == sum(b.tokens for b in res.beams) > 0
    assert abs(sum(r.verifier_tokens for r in results) - ver.tokens_processed) <= len(PROBLEMS)


@pytest.mark.parametrize("agg", ["last", "min", "prod", "mean"])
def test_beam_search_keeps_n_over_m_best_by_agg_strategy(agg):
    gen, ver = ScriptedGenerator(), ValueVerifier()
    n, m = 8, 2
    config = SearchConfig(method="beam_search", n=n, beam_width=m, num_iterations=6, agg_strategy=agg)
    results = beam_search(PROBLEMS, gen, FullScorer(ver), config, seed=1)
    assert len({problem_of(p) for p in gen.calls[0][0]}) == len(PROBLEMS)  # batched across problems
    for (prompts, config_t), (next_prompts, _) in zip(gen.calls, gen.calls[1:]):
        outputs = ScriptedGenerator().generate(prompts, config_t)
        for problem in PROBLEMS:
            rows = [i for i, p in enumerate(prompts) if problem_of(p) == problem]
            if not rows:
                continue
            # Every iteration samples N candidates per problem still searching...
            assert len(rows) * config_t.n == n
            survivors = {solution_of(p) for p in next_prompts if problem_of(p) == problem}
            if not survivors:
                continue
            # ...and keeps the N/M best incomplete ones under agg_strategy.
            candidates = sorted(
                (
                    agg_of(solution_of(prompts[i]) + c.text, agg)
                    for i in rows
                    for c in outputs[i]
                    if c.finish_reason != "eos"
                ),
                reverse=True,
            )
            assert len(survivors) <= n // m
            threshold = candidates[min(n // m, len(candidates)) - 1]
            assert all(agg_of(s, agg) >= threshold for s in survivors)
    for res in results:
        assert len(res.beams) == n
        assert all(b.complete for b in res.beams)
        ranks = [aggregate_scores(b.scores, agg) for b in res.beams]
        assert ranks == sorted(ranks, reverse=True)
        assert res.generated_tokens > 0 and res.verifier_tokens > 0


def test_dvts_subtrees_follow_their_best_candidate():
    gen, ver = ScriptedGenerator(), ValueVerifier()
    n, m = 8, 4
    config = SearchConfig(method="dvts", n=n, beam_width=m, num_iterations=5, agg_strategy="min")
    results = dvts(PROBLEMS, gen, FullScorer(ver), config, seed=2)
    first_prompts, first_config = gen.calls[0]
    assert first_config.n == m and len(first_prompts) == len(PROBLEMS) * (n // m)
    later_prompts = [p for prompts, _ in gen.calls[1:] for p in prompts]
    followed = 0
    for prompts, config_t in gen.calls:
        assert config_t.n == m
        for prompt, outs in zip(prompts, ScriptedGenerator().generate(prompts, config_t)):
            texts = [solution_of(prompt) + c.text for c in outs]
            best = max(range(m), key=lambda i: (agg_of(texts[i], "min"), -i))
            # The subtree continues from its best candidate unless that one finished.
            if outs[best].finish_reason != "eos":
                assert any(solution_of(p) == texts[best] for p in later_prompts)
                followed += 1
    assert followed
    for res in results:
        assert len(res.beams) == n  # N/M subtrees x M leaves
        assert sum(b.complete for b in res.beams) >= n // m
        assert res.generated_tokens > 0 and res.verifier_tokens > 0


def test_lookahead_is_scored_but_not_kept_and_counted():
    gen, ver = ScriptedGenerator(), ValueVerifier()
    config = SearchConfig(method="beam_search", n=4, beam_width=2, num_iterations=4, lookahead=1)
    results = beam_search(PROBLEMS[:2], gen, FullScorer(ver), config, seed=3)
    assert any(c.temperature == 0 for _, c in gen.calls), "lookahead steps were never generated"
    sampled_tokens = sum(
        c.num_generated_tokens
        for prompts, cfg in gen.calls
        for row in ScriptedGenerator().generate(prompts, cfg)
        for c in row
    )
    assert sum(r.generated_tokens for r in results) == sampled_tokens
    for res in results:
        assert all(len(b.scores) == len(b.steps) for b in res.beams)


class ShortGenerator(ScriptedGenerator):
    """Returns one completion fewer than asked for the second prompt of every call with n > 1."""

    def generate(self, prompts, config):
        out = super().generate(prompts, config)
        if config.n > 1 and len(out) > 1:
            out[1] = out[1][:-1]
        return out


@pytest.mark.parametrize("method", ["best_of_n", "beam_search", "dvts"])
def test_a_backend_returning_fewer_completions_fails_clearly(method):
    config = SearchConfig(method=method, n=4, beam_width=2, num_iterations=4)
    search = {"best_of_n": best_of_n, "beam_search": beam_search, "dvts": dvts}[method]
    with pytest.raises(
        GenerationCountError,
        match="returned 1 completions for prompt 1 of a call that asked for n=2"
        if method == "dvts"
        else "completions for prompt 1 of a call that asked for n=4",
    ):
        search(PROBLEMS, ShortGenerator(), FullScorer(ValueVerifier()), config, seed=0)


class DropsStopString(ScriptedGenerator):
    """A backend like vLLM or an OpenAI-compatible server that ends a step at the stop string but leaves the string
    out of the text (``finish_reason`` is still ``stop``)."""

    def generate(self, prompts, config):
        rows = super().generate(prompts, config)
        for row in rows:
            for c in row:
                if c.finish_reason == "stop":
                    assert c.text.endswith("\n\n")
                    c.text = c.text[: -len("\n\n")]
        return rows


@pytest.mark.parametrize("method", ["beam_search", "dvts"])
@pytest.mark.parametrize("lookahead", [0, 1])
def test_a_backend_that_drops_the_stop_string_searches_the_same_solutions(method, lookahead):
    config = SearchConfig(method=method, n=8, beam_width=2, num_iterations=5, agg_strategy="min", lookahead=lookahead)
    search = beam_search if method == "beam_search" else dvts
    keeps = search(PROBLEMS, ScriptedGenerator(), FullScorer(ValueVerifier()), config, seed=4)
    drops_gen = DropsStopString()
    drops = search(PROBLEMS, drops_gen, FullScorer(ValueVerifier()), config, seed=4)
    # Steps after the first were generated from prompts that end with the separator, as with a backend that keeps it.
    continued = [solution_of(p) for prompts, _ in drops_gen.calls[1:] for p in prompts]
    assert continued and all(text.endswith("\n\n") for text in continued if text)
    for a, b in zip(keeps, drops):
        assert [x.text for x in b.beams] == [x.text for x in a.beams]
        assert [x.steps for x in b.beams] == [x.steps for x in a.beams]
        assert [x.scores for x in b.beams] == [x.scores for x in a.beams]
        assert b.generated_tokens == a.generated_tokens
        for beam in b.beams:
            assert "\n\n\n" not in beam.text and all("\n\n" not in step for step in beam.steps)


def test_filter_duplicates_drops_identical_beams():
    class Repetitive(ScriptedGenerator):
        def generate(self, prompts, config):  # every sample of a prompt is identical
            return super().generate(prompts, replace(config, temperature=0.0))

    gen = Repetitive()
    config = SearchConfig(method="beam_search", n=4, beam_width=2, num_iterations=3, filter_duplicates=True)
    beam_search(PROBLEMS[:1], gen, FullScorer(ValueVerifier()), config, seed=0)
    second = gen.calls[1][0]
    assert len(second) == 1 and gen.calls[1][1].n == 4  # identical survivors collapsed to one, expanded N ways


def test_token_budget_is_the_configured_one():
    gen = ScriptedGenerator(steps=50)
    config = SearchConfig(method="dvts", n=4, beam_width=2, num_iterations=40, max_tokens=10, max_step_tokens=4)
    results = dvts(PROBLEMS[:2], gen, FullScorer(ValueVerifier()), config, seed=0)
    for res in results:
        assert all(b.tokens <= 10 and b.complete for b in res.beams if b.complete)
    assert max(c.max_new_tokens for _, c in gen.calls) <= 4


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer()
    prm = AutoModelForTokenClassification.from_config(tiny_qwen2_config(len(tokenizer), num_labels=2)).eval()
    lm_path = tmp_path_factory.mktemp("tiny_lm")
    AutoModelForCausalLM.from_config(tiny_qwen2_config(len(tokenizer))).save_pretrained(lm_path)
    tokenizer.save_pretrained(lm_path)
    return prm, tokenizer, str(lm_path)


@pytest.mark.parametrize("method", [beam_search, dvts])
def test_prefix_cached_search_equals_full_rescoring(tiny_models, method):
    prm, tokenizer, _ = tiny_models
    config = SearchConfig(method=method.__name__, n=4, beam_width=2, num_iterations=5, lookahead=1, agg_strategy="min")
    full_verifier = TokenClassificationVerifier(prm, tokenizer, step_separator="\n")
    full = method(PROBLEMS, ScriptedGenerator(), FullScorer(full_verifier), config, seed=4)
    cached_scorer = PrefixCachedScorer.from_verifier(full_verifier)
    cached = method(PROBLEMS, ScriptedGenerator(), cached_scorer, config, seed=4)
    for a, b in zip(full, cached):
        assert [x.text for x in a.beams] == [x.text for x in b.beams]
        for x, y in zip(a.beams, b.beams):
            assert max(abs(s - t) for s, t in zip(x.scores, y.scores)) < 1e-4
        assert a.generated_tokens == b.generated_tokens
        assert b.verifier_tokens < a.verifier_tokens
    assert cached_scorer.num_nodes == 0  # every cached state released at the end


@pytest.mark.parametrize("method", [best_of_n, beam_search, dvts])
def test_methods_with_real_transformers_generator(tiny_models, method):
    from search.generators.transformers_backend import TransformersGenerator

    prm, tokenizer, lm_path = tiny_models
    generator = TransformersGenerator(lm_path, device="cpu")
    config = SearchConfig(
        method=method.__name__,
        n=4,
        beam_width=2,
        num_iterations=3,
        max_step_tokens=4,
        max_tokens=12,
        system_prompt=None,
    )
    verifier = TokenClassificationVerifier(prm, tokenizer, step_separator="\n")
    results = method(PROBLEMS[:3], generator, PrefixCachedScorer.from_verifier(verifier), config, seed=5)
    again = method(PROBLEMS[:3], generator, FullScorer(verifier), config, seed=5)
    for res, res2 in zip(results, again):
        assert len(res.beams) == 4
        assert [b.text for b in res.beams] == [b.text for b in res2.beams]  # seeded
        for b in res.beams:
            assert len(b.scores) == len(b.steps) and b.tokens <= 12
        assert res.generated_tokens > 0 and res.verifier_tokens > 0
