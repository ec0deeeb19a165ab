"""Monte-Carlo step labels (Math-Shepherd style) from any generator and any answer checker.

For every step prefix of a solution, ``K`` rollouts continue the solution to the end. The *hard* label of the step
is whether any rollout reaches the right answer (the step still leaves the problem solvable); the *soft* label is
the fraction that do. The last step of a solution needs no rollout: its label is whether the solution itself is
right. Rollouts of all prefixes of all solutions go to the generator together, in chunks of ``batch_prefixes``
prompts, so a batched backend decodes them side by side.

When exact labels are known (a checker that can judge each step, as in the arithmetic world), the tool reports how
often the Monte-Carlo labels agree with them, so users can see what the cheaper labels cost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from prm.first_error import first_error_index
from search.generators.base import Generator, SamplingConfig, generate_checked

logger = logging.getLogger(__name__)

AnswerChecker = Callable[[str, Any], bool]


@dataclass
class MCLabelingConfig:
    """How rollouts are sampled."""

    num_rollouts: int = field(default=8, metadata={"help": "K: rollouts per step prefix."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of the rollouts."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling threshold of the rollouts."})
    max_new_tokens: int = field(default=256, metadata={"help": "Token limit of one rollout (to the end)."})
    batch_prefixes: int = field(default=64, metadata={"help": "Prefixes sent to the generator per call."})
    seed: int = field(default=0, metadata={"help": "Sampling seed (each chunk gets seed + chunk index)."})
    step_separator: str = field(default="\n", metadata={"help": "Joins steps, and ends the prefix given to rollouts."})
    system_prompt: str | None = field(default=None, metadata={"help": "Passed to the generator's format_prompt."})

    def __post_init__(self):
        if self.num_rollouts < 1:
            raise ValueError(f"num_rollouts must be >= 1, got {self.num_rollouts}")
        if self.batch_prefixes < 1:
            raise ValueError(f"batch_prefixes must be >= 1, got {self.batch_prefixes}")


@dataclass
class MCLabelingResult:
    """Stepwise rows with hard and with soft labels, plus what the labelling cost and how well it agrees."""

    hard_rows: list[dict[str, Any]]
    soft_rows: list[dict[str, Any]]
    num_rollouts: int = 0
    generated_tokens: int = 0
    agreement: dict[str, float] | None = None


def step_agreement(mc_hard: Sequence[Sequence[bool]], exact: Sequence[Sequence[bool]]) -> dict[str, float]:
    """How Monte-Carlo hard labels compare with exact ones, over all steps and per solution.

    ``step_agreement``: share of steps with the same label. ``precision_wrong`` / ``recall_wrong``: of the steps MC
    calls wrong, the share that are wrong, and of the wrong steps, the share MC catches (MC misses a wrong step when
    a rollout recovers by luck; it flags a right step when every rollout fails). ``first_error_agreement``: share
    of solutions whose first wrong step is the same under both. ``num_steps`` / ``num_wrong_steps``: the steps
    compared and how many of them the exact labels call wrong (the baseline of labelling every step alike).
    """
    same = total = flagged = flagged_wrong = wrong = caught = first_same = 0
    for mc_row, exact_row in zip(mc_hard, exact):
        if len(mc_row) != len(exact_row):
            raise ValueError(f"label lengths differ: {len(mc_row)} MC vs {len(exact_row)} exact")
        for m, e in zip(mc_row, exact_row):
            total += 1
            same += m == e
            flagged += not m
            flagged_wrong += (not m) and (not e)
            wrong += not e
            caught += (not m) and (not e)
        first_same += first_error_index(mc_row) == first_error_index(exact_row)
    return {
        "step_agreement": same / total if total else 0.0,
        "precision_wrong": flagged_wrong / flagged if flagged else 1.0,
        "recall_wrong": caught / wrong if wrong else 1.0,
        "first_error_agreement": first_same / len(exact) if exact else 0.0,
        "num_steps": float(total),
        "num_wrong_steps": float(wrong),
        "num_solutions": float(len(exact)),
    }


def mc_label(
    generator: Generator,
    problems: Sequence[str],
    solutions: Sequence[Sequence[str]],
    answers: Sequence[Any],
    is_correct: AnswerChecker,
    config: MCLabelingConfig | None = None,
    exact_labels: Sequence[Sequence[bool]] | None = None,
    show_progress: bool = True,
) -> MCLabelingResult:
    """Label every step of ``solutions[i]`` (a list of steps solving ``problems[i]``) by rollouts.

    ``is_correct(full_solution_text, answers[i])`` judges a finished solution; it must parse, never execute, the
    text. Rollouts continue ``format_prompt(problem) + steps[:j+1] joined by the separator + separator`` to the end
    (EOS or the token limit).
    """
    config = config or MCLabelingConfig()
    if not len(problems) == len(solutions) == len(answers):
        raise ValueError(f"{len(problems)} problems, {len(solutions)} solutions and {len(answers)} answers differ")
    jobs, counts = _prefix_jobs(generator, problems, solutions, answers, is_correct, config)
    tokens = _run_rollouts(generator, jobs, counts, answers, is_correct, config, show_progress)
    hard_rows, soft_rows = [], []
    for problem, steps, row_counts in zip(problems, solutions, counts):
        soft = [c / config.num_rollouts for c in row_counts]
        hard_rows.append({"prompt": problem, "completions": list(steps), "labels": [c > 0 for c in row_counts]})
        soft_rows.append({"prompt": problem, "completions": list(steps), "labels": soft})
    result = MCLabelingResult(hard_rows, soft_rows, len(jobs) * config.num_rollouts, tokens)
    if exact_labels is not None:
        result.agreement = step_agreement([r["labels"] for r in hard_rows], exact_labels)
        logger.info(
            "MC labels vs exact: %.1f%% of steps agree, %.1f%% of first errors agree (recall of wrong steps %.1f%%)",
            100 * result.agreement["step_agreement"],
            100 * result.agreement["first_error_agreement"],
            100 * result.agreement["recall_wrong"],
        )
    return result


def _prefix_jobs(generator, problems, solutions, answers, is_correct, config: MCLabelingConfig):
    """The rollout prompts ``(solution, step, prompt, prefix text)`` of every step but the last, and the count of
    right rollouts per step with the last step's already filled in (the full solution is its own verdict)."""
    sep = config.step_separator
    counts = [[0] * len(steps) for steps in solutions]
    jobs: list[tuple[int, int, str, str]] = []
    for i, (problem, steps) in enumerate(zip(problems, solutions)):
        if not steps:
            raise ValueError(f"solution {i} has no steps")
        head = generator.format_prompt(problem, config.system_prompt)
        for j in range(len(steps) - 1):
            prefix = sep.join(steps[: j + 1]) + sep
            jobs.append((i, j, head + prefix, prefix))
        counts[i][-1] = config.num_rollouts * bool(is_correct(sep.join(steps), answers[i]))
    return jobs, counts


def _run_rollouts(generator, jobs, counts, answers, is_correct, config: MCLabelingConfig, show_progress: bool) -> int:
    """Sample ``num_rollouts`` continuations of every prefix, chunk by chunk, and count the right ones into
    ``counts``; returns the generated tokens."""
    sampling = SamplingConfig(
        n=config.num_rollouts,
        temperature=config.temperature,
        top_p=config.top_p,
        max_new_tokens=config.max_new_tokens,
        stop=None,
    )
    tokens = 0
    chunks = range(0, len(jobs), config.batch_prefixes)
    for chunk_index, start in enumerate(tqdm(chunks, desc="MC rollouts", disable=not show_progress)):
        chunk = jobs[start : start + config.batch_prefixes]
        sampling.seed = config.seed + chunk_index
        outputs = generate_checked(generator, [prompt for _, _, prompt, _ in chunk], sampling)
        for (i, j, _, prefix), rollouts in zip(chunk, outputs):
            counts[i][j] = sum(bool(is_correct(prefix + r.text, answers[i])) for r in rollouts)
            tokens += sum(r.num_generated_tokens for r in rollouts)
    return tokens
