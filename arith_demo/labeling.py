"""Labelled solutions of the arithmetic world: policy samples with exact labels, synthetic gold/corrupted solutions,
and the two on-disk layouts (stepwise rows for training, ProcessBench records for evaluation)."""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass

from prm.data import split_steps
from search.generators.base import Generator, SamplingConfig
from search.mc_labeling import MCLabelingConfig, MCLabelingResult, mc_label

from .corruptions import CorruptionMix, classify_error, corrupt_lines
from .world import SEPARATOR, ArithProblem, extract_answer, first_error, step_validity

logger = logging.getLogger(__name__)


@dataclass
class LabeledSolution:
    """One solution with exact step labels (True up to the first error)."""

    problem: ArithProblem
    steps: list[str]
    first_error: int
    source: str = "policy"

    @property
    def labels(self) -> list[bool]:
        if self.first_error < 0:
            return [True] * len(self.steps)
        return [i < self.first_error for i in range(len(self.steps))]

    @property
    def correct(self) -> bool:
        return self.first_error < 0


def label_solution(problem: ArithProblem, text: str, source: str = "policy") -> LabeledSolution | None:
    """Split a sampled solution into steps and label it exactly; None when it has no step at all."""
    steps = split_steps(text, SEPARATOR)
    if not steps:
        return None
    return LabeledSolution(problem, steps, first_error(problem, steps), source)


def sample_labeled_solutions(
    generator: Generator,
    problems: list[ArithProblem],
    n: int,
    temperature: float = 1.0,
    seed: int = 0,
    max_new_tokens: int = 64,
) -> list[LabeledSolution]:
    """``n`` full solutions per problem from any generator, labelled by the exact checker."""
    prompts = [generator.format_prompt(p.text) for p in problems]
    config = SamplingConfig(n=n, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
    outputs = generator.generate(prompts, config)
    out, empty = [], 0
    for problem, completions in zip(problems, outputs):
        for completion in completions:
            labeled = label_solution(problem, completion.text)
            if labeled is None:
                empty += 1
            else:
                out.append(labeled)
    if empty:
        logger.warning("%d of %d sampled solutions had no step and were dropped", empty, len(problems) * n)
    return out


def mc_label_solutions(
    generator: Generator, solutions: list[LabeledSolution], config: MCLabelingConfig, show_progress: bool = True
) -> MCLabelingResult:
    """Monte-Carlo labels of ``solutions`` (a rollout counts when its boxed answer is the problem's), with their
    agreement with the exact labels."""
    return mc_label(
        generator,
        [s.problem.text for s in solutions],
        [s.steps for s in solutions],
        [s.problem.answer for s in solutions],
        lambda text, answer: extract_answer(text) == answer,
        config,
        exact_labels=[s.labels for s in solutions],
        show_progress=show_progress,
    )


def measured_mix(
    solutions: list[LabeledSolution], smoothing: float = 0.02, default_weight: float = 0.0
) -> CorruptionMix:
    """The corruption mix that matches the first errors of real samples (``other`` errors are not reproduced),
    blended with ``default_weight`` of the default mix, so that kinds the policy rarely makes are still learned."""
    counts = error_kinds(solutions)
    kinds = CorruptionMix().weights
    total = sum(counts.get(k, 0) for k in kinds)
    if total == 0:
        return CorruptionMix()
    measured = {k: counts.get(k, 0) / total + smoothing for k in kinds}
    norm = sum(measured.values())
    return CorruptionMix({k: (1 - default_weight) * measured[k] / norm + default_weight * kinds[k] for k in kinds})


def error_kinds(solutions: list[LabeledSolution]) -> Counter:
    """How many first errors of each kind (see :func:`classify_error`)."""
    return Counter(k for s in solutions if (k := classify_error(s.problem, s.steps)) is not None)


def line_check_rows(
    solutions: list[LabeledSolution],
    problems: list[ArithProblem],
    seed: int,
    error_rate: float,
    mix: CorruptionMix,
    sample_copies: int = 1,
) -> list[dict]:
    """Training rows for a PRM that checks lines: each line labelled by whether it is locally right
    (:func:`~arith_demo.world.step_validity`), on policy samples and on solutions of ``problems`` in which every
    line goes wrong with probability ``error_rate`` (:func:`~arith_demo.corruptions.corrupt_lines`).

    After the first error these labels differ from ProcessBench's (a line that carries a wrong value forward
    correctly is locally right); the first wrong line is the same, and so is a solution's score under ``min``
    aggregation, which is what evaluation and search read. Each policy sample appears ``sample_copies`` times, so
    that the policy's own mistakes are not drowned by the synthetic ones.
    """
    rng = random.Random(seed)
    rows = [
        {"prompt": s.problem.text, "completions": s.steps, "labels": step_validity(s.problem, s.steps)}
        for s in solutions
    ] * sample_copies
    for problem in problems:
        steps = corrupt_lines(problem, rng, error_rate, mix)
        rows.append({"prompt": problem.text, "completions": steps, "labels": step_validity(problem, steps)})
    rng.shuffle(rows)
    return rows


def processbench_records(solutions: list[LabeledSolution], split: str = "arith") -> list[dict]:
    """Records in ProcessBench's layout, so ``recipes/eval_prm.py --data_dir`` reads them like the real splits."""
    return [
        {
            "id": f"{split}-{i}",
            "generator": s.source,
            "problem": s.problem.text,
            "steps": s.steps,
            "final_answer_correct": s.correct,
            "label": s.first_error,
        }
        for i, s in enumerate(solutions)
    ]


def balanced_heldout(solutions: list[LabeledSolution], seed: int, per_class: int) -> list[LabeledSolution]:
    """Up to ``per_class`` correct and ``per_class`` erroneous solutions (ProcessBench's splits are near balanced)."""
    rng = random.Random(seed)
    good = [s for s in solutions if s.correct]
    bad = [s for s in solutions if not s.correct]
    rng.shuffle(good)
    rng.shuffle(bad)
    picked = good[:per_class] + bad[:per_class]
    rng.shuffle(picked)
    return picked
