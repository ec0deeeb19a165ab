"""Corruptions: the kinds of mistakes a small policy makes (wrong last digit, off by one, a carry, a near miss, a
copied value, a wrong operand, a wrong final answer), applied to a problem's solution the way a policy makes them:
the wrong value is carried forward and every later line is locally right."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from .world import BOXED_RE, LINE_RE, ArithProblem, apply_op, first_error

CorruptionKind = Literal["last_digit", "off_by_one", "carry", "near_miss", "copy", "operand", "boxed"]


def _wrong_last_digit(c: int, rng: random.Random) -> int:
    # At least two away, so that it is not also an off-by-one.
    return c - c % 10 + rng.choice([d for d in range(10) if abs(d - c % 10) >= 2])


def _off_by_one(c: int, rng: random.Random) -> int:
    return c + rng.choice([-1, 1]) if c > 0 else c + 1


def _carry_error(c: int, rng: random.Random) -> int:
    # A dropped or spurious carry moves a non-last digit by one.
    if abs(c) < 10:
        return c + 10
    place = 10 ** rng.randrange(1, len(str(abs(c))))
    return c + rng.choice([-1, 1]) * place


def _near_miss(c: int, rng: random.Random) -> int:
    # 2-9 away across a tens boundary (13 * 4 = 49): the policy's commonest mistake that none of the kinds above is.
    misses = [c + d for d in (*range(-9, -1), *range(2, 10)) if c + d >= 0 and (c + d) // 10 != c // 10]
    return rng.choice(misses or [c + d for d in range(2, 10)])


_WRONG_RESULT = {
    "last_digit": _wrong_last_digit,
    "off_by_one": _off_by_one,
    "carry": _carry_error,
    "near_miss": _near_miss,
}


def _line(value: int, op: str, b: int, kind: str | None, rng: random.Random) -> tuple[int, int, int]:
    """The operands and result of the line applying ``op b`` to ``value``, with mistake ``kind`` (None: right)."""
    a = value
    if kind == "copy":
        a = value + rng.choice([d for d in (-10, -2, -1, 1, 2, 10) if value + d >= 0] or [1])
    if kind == "operand":
        b = rng.choice([x for x in range(1, 10) if x != b])
    c = apply_op(a, op, b)
    if kind in _WRONG_RESULT:
        bad = _WRONG_RESULT[kind](c, rng)
        # A negative result would be an easy tell; go the other way instead.
        c = bad if bad >= 0 else c + (c - bad)
    return a, b, c


@dataclass
class CorruptionMix:
    """Relative frequency of each mistake; measure it from policy samples with :func:`classify_error`.

    The default leaves out ``near_miss``: with it (weight 0.15) in the synthetic lines and the same-prefix test,
    three demo seeds gave a PRM no better than without (README, "Near misses"). Name it in ``weights`` to use it.
    """

    weights: dict[str, float] = field(
        default_factory=lambda: {
            "last_digit": 0.4,
            "off_by_one": 0.25,
            "carry": 0.2,
            "copy": 0.05,
            "operand": 0.05,
            "boxed": 0.05,
        }
    )

    def draw(self, rng: random.Random) -> str:
        kinds = list(self.weights)
        return rng.choices(kinds, weights=[self.weights[k] for k in kinds])[0]


def corrupt(problem: ArithProblem, rng: random.Random, kind: str, at: int | None = None) -> tuple[list[str], int]:
    """A solution whose first error is of ``kind`` at step ``at`` (random if None); returns (steps, first_error).

    Like a policy, the solution carries the wrong value forward and stays locally correct afterwards.
    """
    n = len(problem.ops)
    if kind == "boxed":
        at = n
    elif at is None:
        at = rng.randrange(n)
    at = min(at, n)
    steps, value = [], problem.start
    for k, (op, b) in enumerate(problem.ops):
        a, b, c = _line(value, op, b, kind if k == at else None, rng)
        steps.append(f"{a} {op} {b} = {c}")
        value = c
    boxed = value
    if at == n:
        boxed = rng.choice([x for x in (value - 1, value + 1, _wrong_last_digit(value, rng)) if x >= 0 and x != value])
    steps.append(f"\\boxed{{{boxed}}}")
    return steps, first_error(problem, steps)


def classify_error(problem: ArithProblem, steps: list[str]) -> str | None:
    """Which corruption kind explains a solution's first error (``other`` if none), or None if it has none."""
    index = first_error(problem, steps)
    if index < 0:
        return None
    step = steps[index]
    if BOXED_RE.search(step):
        return "boxed"
    match = LINE_RE.match(step)
    if not match or index >= len(problem.ops):
        return "other"
    a, op, b, c = int(match.group(1)), match.group(2), int(match.group(3)), int(match.group(4))
    expected_a = problem.values()[index - 1] if index else problem.start
    if a != expected_a:
        return "copy"
    if (op, b) != problem.ops[index]:
        return "operand"
    true = apply_op(a, op, b)
    if abs(c - true) == 1:
        return "off_by_one"
    if c // 10 == true // 10:
        return "last_digit"
    if c % 10 == true % 10 and abs(c - true) in {10**p for p in range(1, 4)}:
        return "carry"
    if abs(c - true) < 10:
        return "near_miss"
    return "other"


def corrupt_lines(
    problem: ArithProblem, rng: random.Random, error_rate: float, mix: CorruptionMix | None = None
) -> list[str]:
    """A solution in which every line independently goes wrong with probability ``error_rate`` (kind from ``mix``).

    Each mistake is carried forward, as a policy does, so every line is locally right or wrong on its own: judged
    by :func:`step_validity`, such a solution has several wrong lines at any position, which is dense training
    signal for a verifier that checks lines (rather than one that memorises how hard a problem is).
    """
    mix = mix or CorruptionMix()
    kinds = {k: w for k, w in mix.weights.items() if k != "boxed"}
    steps, value = [], problem.start
    for op, b in problem.ops:
        kind = rng.choices(list(kinds), weights=list(kinds.values()))[0] if rng.random() < error_rate else None
        a, b, c = _line(value, op, b, kind, rng)
        steps.append(f"{a} {op} {b} = {c}")
        value = c
    boxed = value
    # A wrong final answer after right lines is rarer than a wrong line (the policy mostly copies it right).
    if rng.random() < error_rate / 2:
        boxed = rng.choice([value + 1, value + 2] if value <= 0 else [value - 1, value + 1, value + 2])
    steps.append(f"\\boxed{{{boxed}}}")
    return steps
