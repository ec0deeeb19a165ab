"""Beam search guided by a PRM, batched across problems.

Semantics (those of the search-and-learn blog post / Snell et al. 2024), per problem, with ``N = n`` and
``M = beam_width``:

1. Start from ``N`` samples of a first step.
2. Each iteration, every live beam gets one more step (stopping at the step separator); the candidates are
   scored by the PRM, aggregating step scores with ``agg_strategy`` (optionally over ``lookahead`` extra greedy
   steps that are scored but not kept).
3. Candidates that are complete (EOS, a ``\\boxed{}`` answer, the token budget spent, or the last iteration)
   leave the beam and join the pool. Of the others (duplicates dropped with ``filter_duplicates``), the top
   ``N / M`` survive and the next iteration expands them into ``N`` candidates again, ``M`` each (more each when
   fewer survive, so every iteration samples ``N`` candidates).
4. Stop when ``N`` solutions are complete or after ``num_iterations``; the last iteration generates each
   surviving beam to its end instead of one step.

The pool is the ``N`` best complete solutions by aggregated score (live beams fill it if fewer completed).
Unlike search-and-learn's implementation, all problems of a batch are searched at once (one generator and
one verifier call per iteration), ``agg_strategy`` is used for ranking, and every generated token (pruned
candidates and lookahead included) is counted.
"""

from __future__ import annotations

from .config import SearchConfig
from .generators.base import Generator, spread
from .primitives import Beam, ProblemResult, TokenTally, expand_and_score, roots, top_k


def beam_search(
    problems: list[str], generator: Generator, scorer, config: SearchConfig, seed: int
) -> list[ProblemResult]:
    live: list[list[Beam]] = roots(generator, problems, config.system_prompt)
    completed: list[list[Beam]] = [[] for _ in problems]
    tally = TokenTally()
    survivors = config.n // config.beam_width
    for it in range(config.num_iterations):
        active = [p for p in range(len(problems)) if live[p] and len(completed[p]) < config.n]
        if not active:
            break
        final = it == config.num_iterations - 1
        parents = [b for p in active for b in live[p]]
        counts = [c for p in active for c in spread(config.n, len(live[p]))]
        children, ranks = expand_and_score(
            generator, scorer, problems, parents, counts, config, tally, seed, "beam", it, final
        )
        flat = [c for group in children for c in group]
        for p in active:
            candidates = []
            seen: set[str] = set()
            for beam, rank in zip(flat, ranks):
                if beam.problem_index != p:
                    continue
                if beam.complete:
                    completed[p].append(beam)
                elif not (config.filter_duplicates and beam.text in seen):
                    seen.add(beam.text)
                    candidates.append((beam, rank))
            live[p] = [candidates[i][0] for i in top_k([r for _, r in candidates], survivors)]
        # Only the survivors will be extended: the verifier keeps no state for anything else.
        scorer.release([b.node for p in range(len(problems)) for b in live[p]])
    scorer.release([])
    results = []
    for p in range(len(problems)):
        ranked = sorted(completed[p], key=lambda b: -b.score(config.agg_strategy))
        pool = (ranked + sorted(live[p], key=lambda b: -b.score(config.agg_strategy)))[: config.n]
        results.append(tally.result(p, pool))
    return results
