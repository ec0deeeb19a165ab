"""Diverse Verifier Tree Search (DVTS), batched across problems.

Semantics (the search-and-learn blog post's description), per problem, with ``N = n`` and ``M = beam_width``:

- ``N / M`` independent subtrees start from the problem. Each iteration, each unfinished subtree samples ``M``
  candidate next steps of its current beam, the PRM scores them (``agg_strategy`` over the steps, plus any
  ``lookahead`` greedy steps), and the subtree continues from its best candidate only.
- A subtree finishes when its best candidate is complete (EOS, a ``\\boxed{}`` answer, the token budget
  ``max_tokens`` spent) or at the last of ``num_iterations`` iterations, which generates to the end.
- The pool is the ``N`` leaves: the ``M`` candidates of every subtree's last expansion (its best one and the
  ``M - 1`` siblings it was compared with; a sibling can be unfinished, and then holds no answer).

Compared with search-and-learn's implementation: the token budget is the configured ``max_tokens`` (not a
hard-coded limit), and generated and verifier tokens are counted per problem.
"""

from __future__ import annotations

from .config import SearchConfig
from .generators.base import Generator
from .primitives import Beam, ProblemResult, TokenTally, expand_and_score, roots, top_k


def dvts(problems: list[str], generator: Generator, scorer, config: SearchConfig, seed: int) -> list[ProblemResult]:
    num_subtrees = config.n // config.beam_width
    # current[p][s]: subtree s's beam; leaves[p][s]: its final M candidates once finished.
    current: list[list[Beam]] = roots(generator, problems, config.system_prompt, copies=num_subtrees)
    leaves: list[list[list[Beam] | None]] = [[None] * num_subtrees for _ in problems]
    tally = TokenTally()
    for it in range(config.num_iterations):
        open_trees = [(p, s) for p in range(len(problems)) for s in range(num_subtrees) if leaves[p][s] is None]
        if not open_trees:
            break
        final = it == config.num_iterations - 1
        parents = [current[p][s] for p, s in open_trees]
        counts = [config.beam_width] * len(parents)
        children, ranks = expand_and_score(
            generator, scorer, problems, parents, counts, config, tally, seed, "dvts", it, final
        )
        offset = 0
        for t, (p, s) in enumerate(open_trees):
            # Each subtree's ranks by its own group's length (expand checks every group has beam_width).
            group = children[t]
            group_ranks = ranks[offset : offset + len(group)]
            offset += len(group)
            best = group[top_k(group_ranks, 1)[0]]
            if best.complete or final:
                leaves[p][s] = group
            else:
                current[p][s] = best
        scorer.release(
            [current[p][s].node for p in range(len(problems)) for s in range(num_subtrees) if leaves[p][s] is None]
        )
    scorer.release([])
    return [
        tally.result(p, [b for s in range(num_subtrees) for b in (leaves[p][s] or [current[p][s]])])
        for p in range(len(problems))
    ]
