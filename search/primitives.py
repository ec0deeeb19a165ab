"""Expand / score / select: the pieces beam search and DVTS are built from, batched across problems.

A :class:`Beam` is a partial solution of one problem. ``text`` is exactly what the generator produced (step
separators included), so the next step continues the same string; ``steps`` are the same steps without their
separators, which is what the verifier scores (it joins steps with its own separator).
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass, field, replace

from prm.verifiers.aggregation import AggStrategy, aggregate_scores
from prm.verifiers.scoring import ScoreRequest, ScoreResult, StepScorer

from .generators.base import Completion, Generator, SamplingConfig, generate_checked

_BOXED = re.compile(r"\\boxed\s*\{")
_node_ids = itertools.count()


def derive_seed(*parts: object) -> int:
    """A 31-bit seed that depends only on ``parts`` (stable across processes, unlike ``hash``)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def has_final_answer(text: str) -> bool:
    """A step that states a boxed answer ends the solution (the prompts ask for ``\\boxed{answer}``)."""
    return _BOXED.search(text) is not None


@dataclass
class Beam:
    """A partial (or complete) solution of problem ``problem_index`` (an index into the current batch)."""

    problem_index: int
    prompt: str
    text: str = ""
    steps: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    tokens: int = 0  # generated tokens along this path
    complete: bool = False
    finish_reason: str | None = None
    node: int = field(default_factory=lambda: next(_node_ids))
    parent: int | None = None  # the scored beam this one extends; None: extends the bare problem
    is_root: bool = False  # the empty solution a search starts from (never scored)

    def score(self, strategy: AggStrategy) -> float:
        return aggregate_scores(self.scores, strategy)


@dataclass
class StepSettings:
    """How one step is sampled."""

    separator: str
    temperature: float
    top_p: float
    max_step_tokens: int
    max_tokens: int


def _child(parent: Beam, completion: Completion, settings: StepSettings, final: bool) -> Beam:
    text = completion.text
    if completion.finish_reason == "stop" and not text.endswith(settings.separator):
        text += settings.separator  # a backend that drops the stop string: keep the string the search continues
    step = text[: -len(settings.separator)] if text.endswith(settings.separator) else text
    step = step.strip()
    tokens = parent.tokens + completion.num_generated_tokens
    complete = final or completion.finish_reason == "eos" or tokens >= settings.max_tokens or has_final_answer(step)
    return Beam(
        problem_index=parent.problem_index,
        prompt=parent.prompt,
        text=parent.text + text,
        steps=parent.steps + ([step] if step else []),
        tokens=tokens,
        complete=complete,
        finish_reason=completion.finish_reason,
        parent=None if parent.is_root else parent.node,
    )


def _generate_grouped(
    generator: Generator, requests: list[tuple[str, int, int, list[str] | None]], base: SamplingConfig, seed: int
) -> list[list[Completion]]:
    """Generate for ``(prompt, n, max_new_tokens, stop)`` requests with one call per distinct (n, limit, stop)."""
    groups: dict[tuple, list[int]] = {}
    for i, (_, n, limit, stop) in enumerate(requests):
        groups.setdefault((n, limit, tuple(stop) if stop else None), []).append(i)
    out: list[list[Completion]] = [[] for _ in requests]
    for (n, limit, stop), members in groups.items():
        # The seed depends on the call's settings, not on which problems share the batch: backends derive each
        # sample's seed from it and the prompt, so a problem's samples do not depend on its batch.
        config = replace(
            base, n=n, max_new_tokens=limit, stop=list(stop) if stop else None, seed=derive_seed(seed, n, limit, stop)
        )
        outputs = generate_checked(generator, [requests[i][0] for i in members], config)
        for i, completions in zip(members, outputs):
            out[i] = completions
    return out


def expand(
    generator: Generator,
    beams: list[Beam],
    counts: list[int],
    settings: StepSettings,
    seed: int,
    final: bool = False,
) -> tuple[list[list[Beam]], list[int]]:
    """Sample ``counts[i]`` next steps of each beam in one batched pass.

    Each step stops at the separator, EOS, ``max_step_tokens`` or the solution's remaining ``max_tokens`` budget;
    with ``final`` the step runs to the end of the solution (the last iteration). Returns the children of each
    beam and the tokens generated per problem index (so pruned candidates are counted too).
    """
    base = SamplingConfig(temperature=settings.temperature, top_p=settings.top_p)
    requests = []
    for beam, count in zip(beams, counts):
        budget = max(settings.max_tokens - beam.tokens, 1)
        limit = budget if final else min(settings.max_step_tokens, budget)
        requests.append((beam.prompt + beam.text, count, limit, None if final else [settings.separator]))
    outputs = _generate_grouped(generator, requests, base, seed)
    children, generated = [], {}
    for beam, completions in zip(beams, outputs):
        children.append([_child(beam, c, settings, final) for c in completions])
        generated[beam.problem_index] = generated.get(beam.problem_index, 0) + sum(
            c.num_generated_tokens for c in completions
        )
    return children, generated


def lookahead(
    generator: Generator, beams: list[Beam], num_steps: int, settings: StepSettings, seed: int
) -> tuple[list[list[str]], dict[int, int]]:
    """``num_steps`` greedy steps after each incomplete beam: scored to rank the beam, never kept."""
    extra: list[list[str]] = [[] for _ in beams]
    generated: dict[int, int] = {}
    current = {i: b for i, b in enumerate(beams) if not b.complete}
    greedy = replace(settings, temperature=0.0, top_p=1.0)
    for depth in range(num_steps):
        if not current:
            break
        keys = list(current)
        children, gen = expand(
            generator, [current[i] for i in keys], [1] * len(keys), greedy, derive_seed(seed, depth)
        )
        for problem, tokens in gen.items():
            generated[problem] = generated.get(problem, 0) + tokens
        nxt = {}
        for i, [child] in zip(keys, children):
            if len(child.steps) > len(current[i].steps):
                extra[i].append(child.steps[-1])
            if not child.complete:
                nxt[i] = child
        current = nxt
    return extra, generated


class FullScorer:
    """Scores beams by re-scoring their whole prefix with any ``Verifier`` (no state kept between calls)."""

    def __init__(self, verifier):
        self.verifier = verifier

    @property
    def tokens_processed(self) -> int:
        return self.verifier.tokens_processed

    def score(self, requests: list[ScoreRequest]) -> list[ScoreResult]:
        before = self.verifier.tokens_processed
        scores = self.verifier.score([r.problem for r in requests], [r.steps for r in requests])
        return list(map(ScoreResult, scores, share_tokens(self.verifier.tokens_processed - before, requests)))

    def release(self, keep) -> None:
        pass


def share_tokens(total: int, requests: list[ScoreRequest]) -> list[float]:
    """Split a batch's verifier tokens over its requests in proportion to their text length.

    ``Verifier.score`` only reports a batch total; this keeps per-problem counts summing to the true total.
    """
    sizes = [len(r.problem) + sum(len(s) + 1 for s in r.steps) for r in requests]
    whole = sum(sizes) or 1
    return [total * s / whole for s in sizes]


def score_beams(
    scorer: StepScorer,
    problems: list[str],
    beams: list[Beam],
    extra_steps: list[list[str]] | None,
    strategy: AggStrategy,
) -> tuple[list[float], dict[int, float]]:
    """Score every beam (its steps, plus any lookahead steps) and set ``beam.scores`` to its own steps' scores.

    Returns each beam's ranking score (``strategy`` over steps and lookahead steps) and the verifier tokens spent
    per problem index.
    """
    extra_steps = extra_steps or [[] for _ in beams]
    requests = [
        ScoreRequest(
            problem=problems[b.problem_index],
            steps=b.steps + extra,
            parent=b.parent,
            node=b.node,
            keep_steps=len(b.steps),
        )
        for b, extra in zip(beams, extra_steps)
    ]
    ranks, spent = [], {}
    for beam, result in zip(beams, scorer.score(requests)):
        beam.scores = list(result.scores[: len(beam.steps)])
        ranks.append(aggregate_scores(result.scores, strategy))
        spent[beam.problem_index] = spent.get(beam.problem_index, 0.0) + result.tokens
    return ranks, spent


def top_k(ranks: list[float], k: int) -> list[int]:
    """Indices of the ``k`` highest ranks, best first; ties keep the earlier index (deterministic)."""
    return sorted(range(len(ranks)), key=lambda i: (-ranks[i], i))[:k]


def add_counts(into: dict[int, float], more: dict[int, float]) -> None:
    for key, value in more.items():
        into[key] = into.get(key, 0) + value


@dataclass
class ProblemResult:
    """One problem's final pool (``n`` beams) and the compute spent on it."""

    beams: list[Beam]
    generated_tokens: int
    verifier_tokens: int


@dataclass
class TokenTally:
    """Tokens spent per problem index: generated (pruned candidates and lookahead included) and verifier tokens."""

    generated: dict[int, float] = field(default_factory=dict)
    verified: dict[int, float] = field(default_factory=dict)

    def result(self, problem_index: int, beams: list[Beam]) -> ProblemResult:
        """The problem's pool with the tokens it cost."""
        return ProblemResult(
            beams, round(self.generated.get(problem_index, 0)), round(self.verified.get(problem_index, 0))
        )


def expand_and_score(
    generator: Generator,
    scorer: StepScorer,
    problems: list[str],
    parents: list[Beam],
    counts: list[int],
    config,
    tally: TokenTally,
    seed: int,
    stage: str,
    iteration: int,
    final: bool,
) -> tuple[list[list[Beam]], list[float]]:
    """One iteration of beam search or DVTS up to selection: ``counts[i]`` next steps of each parent, their
    lookahead (``config.lookahead`` greedy steps, never on the final iteration), and the scores of every child.

    Returns each parent's children and the children's ranking scores (flattened in the same order); the tokens
    spent go into ``tally``. The expansion's seed derives from ``(seed, stage, iteration)``, the lookahead's from
    ``(seed, "look", iteration)``.
    """
    settings = step_settings(config)
    children, gen = expand(generator, parents, counts, settings, derive_seed(seed, stage, iteration), final)
    add_counts(tally.generated, gen)
    flat = [c for group in children for c in group]
    extra = None
    if config.lookahead and not final:
        extra, gen = lookahead(generator, flat, config.lookahead, settings, derive_seed(seed, "look", iteration))
        add_counts(tally.generated, gen)
    ranks, spent = score_beams(scorer, problems, flat, extra, config.agg_strategy)
    add_counts(tally.verified, spent)
    return children, ranks


def step_settings(config) -> StepSettings:
    return StepSettings(
        separator=config.step_separator,
        temperature=config.temperature,
        top_p=config.top_p,
        max_step_tokens=config.max_step_tokens,
        max_tokens=config.max_tokens,
    )


def roots(generator: Generator, problems: list[str], system_prompt: str | None, copies: int = 1) -> list[list[Beam]]:
    """``copies`` empty solutions per problem, each an independent search root."""
    out = []
    for p, problem in enumerate(problems):
        prompt = generator.format_prompt(problem, system_prompt)
        out.append([Beam(problem_index=p, prompt=prompt, is_root=True) for _ in range(copies)])
    return out
