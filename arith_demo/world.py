"""A small arithmetic world: seeded problems, gold solutions and an exact step checker (mistakes: ``corruptions``).

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
from dataclasses import dataclass
from typing import Literal

from prm import grading
from prm.first_error import first_error_index

Op = Literal["+", "-", "*"]
OP_WORDS = {"+": "Add {b}.", "-": "Subtract {b}.", "*": "Multiply by {b}."}
_WORD_RE = re.compile(r"(Add|Subtract|Multiply by) (\d+)\.")
_WORD_OPS = {"Add": "+", "Subtract": "-", "Multiply by": "*"}
LINE_RE = re.compile(r"^\s*(-?\d+) ([-+*]) (\d+) = (-?\d+)\s*$")
BOXED_RE = re.compile(r"\\boxed\{(-?\d+)\}")
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
        boxed = BOXED_RE.search(step)
        if boxed:
            out.append(k == len(problem.ops) and int(boxed.group(1)) == value and step.strip() == boxed.group(0))
            value, k = int(boxed.group(1)), len(problem.ops) + 1
            continue
        match = LINE_RE.match(step)
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
    if not steps or not BOXED_RE.search(steps[-1]):
        # An unfinished solution is not a correct one; blame the last step.
        return max(len(steps) - 1, 0)
    return -1


def is_correct(problem: ArithProblem, solution: str) -> bool:
    return extract_answer(solution) == problem.answer
