"""Best-of-N: N full solutions per problem, each split into steps and scored by the verifier."""

from __future__ import annotations

from prm.data.format import split_steps

from .config import SearchConfig
from .generators.base import Generator, SamplingConfig, generate_checked
from .primitives import Beam, ProblemResult, derive_seed, has_final_answer, roots, score_beams


def best_of_n(
    problems: list[str], generator: Generator, scorer, config: SearchConfig, seed: int
) -> list[ProblemResult]:
    """One generator call samples ``n`` solutions of every problem; one verifier call scores them all."""
    prompts = [r[0].prompt for r in roots(generator, problems, config.system_prompt)]
    sampling = SamplingConfig(
        n=config.n,
        temperature=config.temperature,
        top_p=config.top_p,
        max_new_tokens=config.max_tokens,
        seed=derive_seed(seed, "best_of_n"),
    )
    beams: list[Beam] = []
    generated = [0] * len(problems)
    for p, completions in enumerate(generate_checked(generator, prompts, sampling)):
        for c in completions:
            beams.append(
                Beam(
                    problem_index=p,
                    prompt=prompts[p],
                    text=c.text,
                    steps=split_steps(c.text, config.step_separator),
                    tokens=c.num_generated_tokens,
                    complete=c.finish_reason == "eos" or has_final_answer(c.text),
                    finish_reason=c.finish_reason,
                )
            )
            generated[p] += c.num_generated_tokens
    _, spent = score_beams(scorer, problems, beams, None, config.agg_strategy)
    scorer.release([])
    return [
        ProblemResult(
            beams=[b for b in beams if b.problem_index == p],
            generated_tokens=generated[p],
            verifier_tokens=round(spent.get(p, 0)),
        )
        for p in range(len(problems))
    ]
