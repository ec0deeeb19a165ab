"""Monte-Carlo step labels: a scripted generator with known success rates, and the real shipped arithmetic policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from prm.data import validate_rows
from search.generators.base import Completion, Generator, SamplingConfig
from search.mc_labeling import MCLabelingConfig, mc_label, step_agreement

SHIPPED_POLICY = Path(__file__).resolve().parents[1] / "recipes" / "arith" / "policy"


class ScriptedGenerator(Generator):
    """Continues a prefix of ``depth`` steps of problem ``name`` right in exactly ``rates[name][depth] * n`` of its
    ``n`` samples (the first ones), wrong in the rest. Records every call."""

    def __init__(self, rates: dict[str, list[float]]):
        self.rates = rates
        self.calls: list[list[str]] = []

    def format_prompt(self, problem: str, system_prompt: str | None = None) -> str:
        return f"Q: {problem}\n"

    def generate(self, prompts: list[str], config: SamplingConfig) -> list[list[Completion]]:
        self.calls.append(list(prompts))
        out = []
        for prompt in prompts:
            head, body = prompt.split("\n", 1)
            name = head[len("Q: ") :]
            depth = body.count("\n")
            good = round(self.rates[name][depth - 1] * config.n)
            texts = ["ok\nANSWER right"] * good + ["oops\nANSWER wrong"] * (config.n - good)
            out.append([Completion(t, "eos", len(prompt), 3) for t in texts])
        return out


def check(solution: str, answer: str) -> bool:
    return solution.rsplit("ANSWER ", 1)[-1].strip() == answer


RATES = {"a": [1.0, 0.5, 0.25], "b": [0.75, 0.0, 0.0], "c": [0.25, 0.25, 0.5]}
SOLUTIONS = {
    "a": ["s1", "s2", "s3", "ANSWER right"],
    "b": ["s1", "s2", "s3", "ANSWER wrong"],
    "c": ["s1", "s2", "s3", "ANSWER wrong"],
}


def run(batch_prefixes: int = 4, exact=None):
    generator = ScriptedGenerator(RATES)
    names = list(SOLUTIONS)
    config = MCLabelingConfig(num_rollouts=8, batch_prefixes=batch_prefixes)
    result = mc_label(
        generator,
        names,
        [SOLUTIONS[n] for n in names],
        ["right"] * len(names),
        check,
        config,
        exact_labels=exact,
        show_progress=False,
    )
    return generator, result


def test_soft_labels_are_the_success_rates_and_hard_labels_any_success():
    _, result = run()
    soft = {row["prompt"]: row["labels"] for row in result.soft_rows}
    hard = {row["prompt"]: row["labels"] for row in result.hard_rows}
    for name, rates in RATES.items():
        final = 1.0 if SOLUTIONS[name][-1] == "ANSWER right" else 0.0
        assert soft[name] == [*rates, final]
        assert hard[name] == [r > 0 for r in [*rates, final]]
    assert validate_rows(result.hard_rows) == 3
    assert validate_rows(result.soft_rows) == 3
    # Only the prefixes that are not the full solution need rollouts.
    assert result.num_rollouts == 3 * 3 * 8


def test_rollouts_of_many_prefixes_share_generator_calls():
    generator, _ = run(batch_prefixes=4)
    assert [len(call) for call in generator.calls] == [4, 4, 1]
    # A chunk mixes prefixes of different solutions, each ending with the separator.
    assert {prompt.split("\n", 1)[0] for prompt in generator.calls[0]} == {"Q: a", "Q: b"}
    assert all(prompt.endswith("\n") for call in generator.calls for prompt in call)


def test_agreement_with_exact_labels_counts_lucky_recoveries_and_flags():
    exact = [
        [True, True, True, True],  # a: MC agrees everywhere
        [True, False, False, False],  # b: MC agrees
        [False, False, False, False],  # c: wrong from step 0, but rollouts recover by luck (rates 0.25)
    ]
    _, result = run(exact=exact)
    agreement = result.agreement
    assert agreement["step_agreement"] == pytest.approx(9 / 12)
    assert agreement["first_error_agreement"] == pytest.approx(2 / 3)
    assert agreement["precision_wrong"] == 1.0
    assert agreement["recall_wrong"] == pytest.approx(4 / 7)
    assert (agreement["num_steps"], agreement["num_wrong_steps"]) == (12, 7)


def test_step_agreement_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="label lengths differ"):
        step_agreement([[True, False]], [[True]])


def test_config_rejects_zero_rollouts():
    with pytest.raises(ValueError, match="num_rollouts"):
        MCLabelingConfig(num_rollouts=0)


@pytest.mark.skipif(not (SHIPPED_POLICY / "model.safetensors").is_file(), reason="shipped policy not built")
def test_mc_labels_of_the_real_policy_agree_with_exact_labels():
    from arith_demo.labeling import mc_label_solutions, sample_labeled_solutions
    from arith_demo.policy import load_policy
    from arith_demo.world import DIFFICULTIES, make_problems
    from search.generators.transformers_backend import TransformersGenerator

    model, tokenizer = load_policy(SHIPPED_POLICY)
    generator = TransformersGenerator(model=model, tokenizer=tokenizer, device="cpu", max_batch_size=256)
    problems = make_problems(24, seed=777, difficulty=DIFFICULTIES["medium"])
    samples = sample_labeled_solutions(generator, problems, n=2, temperature=1.0, seed=0)
    config = MCLabelingConfig(num_rollouts=4, max_new_tokens=64, batch_prefixes=128)
    result = mc_label_solutions(generator, samples, config, show_progress=False)
    # A wrong step can never be completed to the right answer except by a compensating mistake, and right steps
    # are mostly completed right by a policy that is right most of the time: agreement is high but not perfect.
    assert result.agreement["step_agreement"] > 0.8
    assert result.agreement["precision_wrong"] > 0.6
