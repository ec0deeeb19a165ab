"""Does a PRM verify? Three measurements that a global step AUROC can hide.

- ``line_discrimination``: the same prefix ending once with the right line and once with a corrupted one; a PRM
  that checks lines scores the right one higher. (A PRM that only learned how hard a problem is cannot.)
- ``within_problem_ranking``: over pairs of samples of the same problem, one right and one wrong, how often the
  right one gets the higher solution score. This is what Best-of-N needs.
- ``step_auroc``: the usual global number, for completeness.

``pool_statistics`` measures the last two (and the policy's accuracy) on a search run's pool of samples.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .corruptions import CorruptionMix, corrupt
from .labeling import label_solution
from .world import ArithProblem, extract_answer, parse_problem, step_validity


def auroc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """P(a random positive scores above a random negative), ties counting one half (Mann-Whitney)."""
    if not positive or not negative:
        return float("nan")
    ranked = sorted([(s, 1) for s in positive] + [(s, 0) for s in negative])
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        mean_rank = (i + j + 1) / 2  # 1-based average rank of the tied block
        rank_sum += mean_rank * sum(label for _, label in ranked[i:j])
        i = j
    n_pos, n_neg = len(positive), len(negative)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def step_auroc(step_scores: Sequence[Sequence[float]], step_labels: Sequence[Sequence[bool]]) -> float:
    pos = [s for scores, labels in zip(step_scores, step_labels) for s, y in zip(scores, labels) if y]
    neg = [s for scores, labels in zip(step_scores, step_labels) for s, y in zip(scores, labels) if not y]
    return auroc(pos, neg)


def within_problem_ranking(
    problem_ids: Sequence[str], solution_scores: Sequence[float], correct: Sequence[bool]
) -> tuple[float, int]:
    """Share of (right, wrong) pairs of the same problem where the right one scores higher (ties: 1/2), and the
    number of such pairs."""
    groups: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for pid, score, ok in zip(problem_ids, solution_scores, correct):
        groups[pid][0 if ok else 1].append(score)
    wins, pairs = 0.0, 0
    for good, bad in groups.values():
        for g in good:
            for b in bad:
                wins += 1.0 if g > b else 0.5 if g == b else 0.0
                pairs += 1
    return (wins / pairs if pairs else float("nan")), pairs


@dataclass
class LineDiscrimination:
    """Scores of right and corrupted versions of the same line after the same (right) prefix."""

    mean_right: float
    mean_corrupted: float
    pair_accuracy: float
    num_pairs: int
    by_kind: dict[str, float]


def line_pairs(problems: Sequence[ArithProblem], seed: int, mix: CorruptionMix | None = None):
    """For each problem: (problem, prefix + right line, prefix + corrupted line, kind), the line chosen at random."""
    rng, mix = random.Random(seed), mix or CorruptionMix()
    out = []
    for problem in problems:
        kind = mix.draw(rng)
        steps, error = corrupt(problem, rng, kind)
        gold = problem.gold_steps()
        out.append((problem, gold[: error + 1], steps[: error + 1], kind))
    return out


def line_discrimination(verifier, problems: Sequence[ArithProblem], seed: int = 0, mix=None) -> LineDiscrimination:
    """Score the last line of each pair from :func:`line_pairs` with ``verifier`` (a ``prm.verifiers.Verifier``)."""
    pairs = line_pairs(problems, seed, mix)
    texts = [p.text for p, *_ in pairs]
    right = [s[-1] for s in verifier.score(texts, [r for _, r, _, _ in pairs])]
    wrong = [s[-1] for s in verifier.score(texts, [w for _, _, w, _ in pairs])]
    kinds: dict[str, list[float]] = defaultdict(list)
    wins = []
    for (*_, kind), r, w in zip(pairs, right, wrong):
        win = 1.0 if r > w else 0.5 if r == w else 0.0
        wins.append(win)
        kinds[kind].append(win)
    return LineDiscrimination(
        mean_right=sum(right) / len(right),
        mean_corrupted=sum(wrong) / len(wrong),
        pair_accuracy=sum(wins) / len(wins),
        num_pairs=len(wins),
        by_kind={k: sum(v) / len(v) for k, v in sorted(kinds.items())},
    )


def pool_statistics(rows: list[dict]) -> dict[str, Any]:
    """Policy accuracy and PRM ranking measured on a Best-of-N pool of independent samples."""
    correct = solutions = valid_steps = steps = 0
    ids, scores, oks, flawless, step_scores, step_labels = [], [], [], [], [], []
    for row in rows:
        problem = parse_problem(row["problem"])
        for text, s in zip(row["completions"], row["scores"]):
            labeled = label_solution(problem, text)
            ok = extract_answer(text) == problem.answer
            correct += ok
            solutions += 1
            flawless.append(labeled is not None and labeled.correct)
            if labeled is not None:
                validity = step_validity(problem, labeled.steps)
                valid_steps += sum(validity)
                steps += len(validity)
                if len(labeled.steps) == len(s):
                    # A prefix is as good as its worst line: the PRM is trained to check lines one by one.
                    step_scores.append(list(itertools.accumulate(s, min)))
                    step_labels.append(labeled.labels)
            ids.append(f"{row['index']}")
            scores.append(min(s) if s else 0.0)
            oks.append(ok)
    ranking, pairs = within_problem_ranking(ids, scores, oks)
    # A sample can reach the right answer through a wrong line (3-4% of the demo's samples); a PRM that checks lines
    # rightly scores it low. So the ranking by answer has a ceiling below 1, reached by the exact line checker, and
    # the ranking by ProcessBench's notion of a right solution (no wrong line) is reported beside it.
    ceiling, _ = within_problem_ranking(ids, [float(f) for f in flawless], oks)
    ranking_process, _ = within_problem_ranking(ids, scores, flawless)
    return {
        "single": correct / max(solutions, 1),
        "step_accuracy": valid_steps / max(steps, 1),
        "ranking": ranking,
        "ranking_pairs": pairs,
        "ranking_ceiling": ceiling,
        "ranking_process": ranking_process,
        "step_auroc": step_auroc(step_scores, step_labels),
    }
