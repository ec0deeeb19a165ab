"""A small arithmetic world: seeded problems, gold solutions, an exact step checker and realistic corruptions.

A problem reads ``Start with 7. Add 5. Multiply by 3. Subtract 4.``; its solution has one line per operation
(``7 + 5 = 12``, ``12 * 3 = 36``, ``36 - 4 = 32``) and a final line ``\\boxed{32}``. Lines are separated by
``\\n``. Every intermediate value stays in ``[0, max_value)`` so the difficulty setting bounds the digits a model
has to handle.

Step labels follow ProcessBench: a step is correct when it and every step before it are correct (after the first
error nothing can be right any more, which is also what Monte-Carlo labels converge to).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Literal

from prm import grading
from prm.first_error import first_error_index

Op = Literal["+", "-", "*"]
OP_WORDS = {"+": "Add {b}.", "-": "Subtract {b}.", "*": "Multiply by {b}."}
_WORD_RE = re.compile(r"(Add|Subtract|Multiply by) (\d+)\.")
_WORD_OPS = {"Add": "+", "Subtract": "-", "Multiply by": "*"}
_LINE_RE = re.compile(r"^\s*(-?\d+) ([-+*]) (\d+) = (-?\d+)\s*$")
_BOXED_RE = re.compile(r"\\boxed\{(-?\d+)\}")
_INT_RE = re.compile(r"-?\d+")
SEPARATOR = "\n"


@dataclass(frozen=True)
class Difficulty:
    """How hard the problems are."""

    min_ops: int = 3
    max_ops: int = 4
    max_operand: int = 9
    max_value: int = 100
    ops: tuple[str, ...] = ("+", "-", "*")

    def __post_init__(self):
        if not 1 <= self.min_ops <= self.max_ops:
            raise ValueError(f"need 1 <= min_ops <= max_ops, got {self.min_ops}, {self.max_ops}")
        if self.max_operand < 1 or self.max_value <= self.max_operand:
            raise ValueError("need 1 <= max_operand < max_value")
        unknown = set(self.ops) - set(OP_WORDS)
        if unknown or not self.ops:
            raise ValueError(f"ops must be a non-empty subset of {sorted(OP_WORDS)}, got {self.ops}")


DIFFICULTIES = {
    "easy": Difficulty(min_ops=2, max_ops=3, max_value=100, ops=("+", "-")),
    "medium": Difficulty(),
    "hard": Difficulty(min_ops=3, max_ops=5, max_value=1000),
}


def apply_op(a: int, op: str, b: int) -> int:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    raise ValueError(f"unknown operation {op!r}")


@dataclass(frozen=True)
class ArithProblem:
    """A problem of the arithmetic world: a start value and operations. Its ``text`` and ``answer`` are what a
    dataset row holds (the search's :class:`search.runner.Problem` is such a row, with its index)."""

    start: int
    ops: tuple[tuple[str, int], ...]

    @property
    def text(self) -> str:
        return " ".join([f"Start with {self.start}."] + [OP_WORDS[op].format(b=b) for op, b in self.ops])

    def values(self) -> list[int]:
        """The running value after each operation."""
        out, value = [], self.start
        for op, b in self.ops:
            value = apply_op(value, op, b)
            out.append(value)
        return out

    @property
    def answer(self) -> int:
        return self.values()[-1]

    def gold_steps(self) -> list[str]:
        steps, value = [], self.start
        for op, b in self.ops:
            new = apply_op(value, op, b)
            steps.append(f"{value} {op} {b} = {new}")
            value = new
        return steps + [f"\\boxed{{{value}}}"]


def parse_problem(text: str) -> ArithProblem:
    """Read a problem back from its text (the checker needs nothing else)."""
    match = re.match(r"\s*Start with (\d+)\.", text)
    if not match:
        raise ValueError(f"not an arithmetic problem: {text[:60]!r}")
    ops = tuple((_WORD_OPS[w], int(b)) for w, b in _WORD_RE.findall(text[match.end() :]))
    return ArithProblem(int(match.group(1)), ops)


def sample_problem(rng: random.Random, difficulty: Difficulty) -> ArithProblem:
    """Rejection-free: at each step pick among the operations that keep the value in range."""
    value = rng.randint(1, difficulty.max_operand)
    start, ops = value, []
    for _ in range(rng.randint(difficulty.min_ops, difficulty.max_ops)):
        choices = []
        for op in difficulty.ops:
            for b in range(1, difficulty.max_operand + 1):
                if op == "*" and b == 1:
                    continue
                if 0 <= apply_op(value, op, b) < difficulty.max_value:
                    choices.append((op, b))
        # Pick the operation first so that + - * stay balanced even when few multiplications fit.
        by_op = sorted({op for op, _ in choices})
        op = rng.choice(by_op)
        b = rng.choice([b for o, b in choices if o == op])
        ops.append((op, b))
        value = apply_op(value, op, b)
    return ArithProblem(start, tuple(ops))


def make_problems(n: int, seed: int, difficulty: Difficulty, exclude: set[str] | None = None) -> list[ArithProblem]:
    """``n`` distinct problems from ``seed``; ``exclude`` keeps held-out problems out of training sets."""
    rng, seen, out = random.Random(seed), set(exclude or ()), []
    while len(out) < n:
        problem = sample_problem(rng, difficulty)
        if problem.text not in seen:
            seen.add(problem.text)
            out.append(problem)
    return out


def extract_answer(text: str) -> int | None:
    """The final answer as an integer: the answer :func:`prm.grading.extract_answer` reads (the last ``\\boxed{}``),
    or None when there is none or it is not an integer."""
    answer = grading.extract_answer(text)
    return int(answer) if answer is not None and _INT_RE.fullmatch(answer) else None


def step_validity(problem: ArithProblem, steps: list[str]) -> list[bool]:
    """Whether each line is locally right: it applies the next operation to the previous line's result exactly.

    Only the first ``False`` matters for labels (see :func:`step_labels`); later lines are judged against the
    value the solution actually carried, so a corrupted solution stays locally consistent after its error.
    """
    out, value, k = [], problem.start, 0
    for step in steps:
        boxed = _BOXED_RE.search(step)
        if boxed:
            out.append(k == len(problem.ops) and int(boxed.group(1)) == value and step.strip() == boxed.group(0))
            value, k = int(boxed.group(1)), len(problem.ops) + 1
            continue
        match = _LINE_RE.match(step)
        if not match or k >= len(problem.ops):
            out.append(False)
            k += 1
            continue
        a, op, b, c = int(match.group(1)), match.group(2), int(match.group(3)), int(match.group(4))
        out.append(a == value and (op, b) == problem.ops[k] and c == apply_op(a, op, b))
        value, k = c, k + 1
    return out


def step_labels(problem: ArithProblem, steps: list[str]) -> list[bool]:
    """Exact labels: True up to (not including) the first invalid step, False from there on."""
    labels, ok = [], True
    for valid in step_validity(problem, steps):
        ok = ok and valid
        labels.append(ok)
    return labels


def first_error(problem: ArithProblem, steps: list[str]) -> int:
    """ProcessBench label: index of the first wrong step, -1 if every step is right and the solution finishes."""
    index = first_error_index(step_labels(problem, steps))
    if index >= 0:
        return index
    if not steps or not _BOXED_RE.search(steps[-1]):
        # An unfinished solution is not a correct one; blame the last step.
        return max(len(steps) - 1, 0)
    return -1


def is_correct(problem: ArithProblem, solution: str) -> bool:
    return extract_answer(solution) == problem.answer


# --- corruptions: the kinds of mistakes a small policy makes -------------------------------------------------

CorruptionKind = Literal["last_digit", "off_by_one", "carry", "copy", "operand", "boxed"]


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


@dataclass
class CorruptionMix:
    """Relative frequency of each mistake; measure it from policy samples with :func:`classify_error`."""

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
        a = value
        if k == at and kind == "copy":
            a = value + rng.choice([d for d in (-10, -2, -1, 1, 2, 10) if value + d >= 0])
        if k == at and kind == "operand":
            b = rng.choice([x for x in range(1, 10) if x != b])
        c = apply_op(a, op, b)
        if k == at and kind in ("last_digit", "off_by_one", "carry"):
            wrong = {"last_digit": _wrong_last_digit, "off_by_one": _off_by_one, "carry": _carry_error}
            bad = wrong[kind](c, rng)
            # A negative result would be an easy tell; go the other way instead.
            c = bad if bad >= 0 else c + (c - bad)
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
    if _BOXED_RE.search(step):
        return "boxed"
    match = _LINE_RE.match(step)
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
        a = value
        kind = rng.choices(list(kinds), weights=list(kinds.values()))[0] if rng.random() < error_rate else None
        if kind == "copy":
            a = value + rng.choice([d for d in (-10, -2, -1, 1, 2, 10) if value + d >= 0] or [1])
        if kind == "operand":
            b = rng.choice([x for x in range(1, 10) if x != b])
        c = apply_op(a, op, b)
        if kind in ("last_digit", "off_by_one", "carry"):
            wrong = {"last_digit": _wrong_last_digit, "off_by_one": _off_by_one, "carry": _carry_error}
            bad = wrong[kind](c, rng)
            c = bad if bad >= 0 else c + (c - bad)
        steps.append(f"{a} {op} {b} = {c}")
        value = c
    boxed = value
    # A wrong final answer after right lines is rarer than a wrong line (the policy mostly copies it right).
    if rng.random() < error_rate / 2:
        boxed = rng.choice([value + 1, value + 2] if value <= 0 else [value - 1, value + 1, value + 2])
    steps.append(f"\\boxed{{{boxed}}}")
    return steps
