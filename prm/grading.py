"""Final answers: extraction from solution text, equivalence with math-verify, gold answers of MATH-500 / GSM8K.

Model output is only ever parsed (regular expressions, brace matching, math-verify's LaTeX parser), never executed.
math-verify can spend unbounded time on some inputs (``9^{9^{9^{9}}}``, huge factorials) and its own timeout is a
``SIGALRM`` that works only in the main thread and cannot interrupt long C-level arithmetic. So every math-verify
call runs in one long-lived worker process (spawned, not forked, so it is safe next to CUDA and threads): the caller
waits at most ``timeout_s`` per comparison, then kills the worker, counts the comparison as "not equal" (or falls back
to the normalized string for a canonical form) and starts a fresh worker on the next call. Answers longer than
``max_chars`` are never parsed, only compared as normalized strings. The worker is a plain subprocess
(``python -m prm.grading_worker``, JSON lines on stdin/stdout), so no ``if __name__ == "__main__"`` guard is needed
in user scripts and nothing is forked from a process that holds CUDA or threads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import select
import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path
from typing import Literal

logger = logging.getLogger(__name__)

AnswerFormat = Literal["auto", "plain", "gsm8k"]

_BOXED = re.compile(r"\\(?:boxed|fbox)\b")
_GSM8K = re.compile(r"####\s*([^\n]+)")
_ANSWER_IS = re.compile(r"[Tt]he (?:final )?answer is[:\s]*([^\n]+)")


def _brace_group(text: str, start: int) -> tuple[str, int] | None:
    """The content of the ``{...}`` group opening at ``text[start]`` and the index after it; escaped braces
    (``\\{``) do not count. None if the group never closes (a truncated generation)."""
    depth, i = 0, start
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
        i += 1
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}`` (or ``\\fbox{...}``), nested braces included; ``\\boxed 5``
    without braces gives the next token."""
    found = None
    for m in _BOXED.finditer(text):
        i = m.end()
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == "{":
            group = _brace_group(text, i)
            if group is not None:
                found = group[0]
        elif i > m.end():
            token = re.match(r"[^\s$]+", text[i:])
            if token:
                found = token.group(0)
    return found


def _strip_answer(answer: str) -> str:
    answer = answer.strip()
    answer = re.sub(r"[\s.]+$", "", answer)
    if answer.startswith("$") and answer.endswith("$") and len(answer) > 1:
        answer = answer.strip("$").strip()
    return answer


def extract_answer(text: str) -> str | None:
    """The final answer of a solution, or None. In order of precedence: the last ``\\boxed{}``; the last GSM8K
    ``#### N``; the last "The (final) answer is X" (X: a leading math span like ``$...$``, else the rest of the
    sentence without a final period)."""
    if not text:
        return None
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed.strip()
    hashes = _GSM8K.findall(text)
    if hashes:
        return _strip_answer(hashes[-1])
    said = _ANSWER_IS.findall(text)
    if said:
        return _answer_after_phrase(said[-1])
    return None


def _answer_after_phrase(rest: str) -> str | None:
    """The answer at the start of ``rest`` (what follows "the answer is"): a ``$...$``, ``\\(...\\)`` or
    ``\\[...\\]`` math span when it starts with one, else the text up to the end of the sentence."""
    rest = rest.strip()
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if rest.startswith(left):
            end = rest.find(right, len(left))
            if end > len(left):
                inner = rest[len(left) : end].strip()
                return last_boxed(inner) or inner
            break
    rest = re.split(r"\.\s", rest, maxsplit=1)[0]
    answer = _strip_answer(rest)
    return last_boxed(answer) or answer or None


def normalize_answer(answer: str) -> str:
    """A string form for cheap equality: spacing, ``\\left``/``\\right``, ``\\dfrac``, ``^\\circ``, surrounding
    ``$``, ``\\text{}`` wrappers and a trailing period removed."""
    s = answer.strip().strip("$")
    s = re.sub(r"\\text\{\s*([^{}]*)\}", r"\1", s)
    for old, new in (("\\left", ""), ("\\right", ""), ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("^\\circ", "")):
        s = s.replace(old, new)
    s = s.replace("^{\\circ}", "")
    s = re.sub(r"\\[,;:! ]", "", s)
    s = re.sub(r"\s+", "", s)
    return s.rstrip(".")


_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_PLAIN_FRACTION = re.compile(r"(-?)\\frac\{(\d+)\}\{(\d+)\}")


def plain_number(answer: str) -> Fraction | None:
    """The value of an answer that is just a number (``42``, ``-0.5``, ``\\frac{3}{4}``, after
    :func:`normalize_answer`), else None. Such answers skip math-verify: most GSM8K/MATH answers are."""
    s = normalize_answer(answer)
    if _PLAIN_NUMBER.fullmatch(s):
        return Fraction(s)
    m = _PLAIN_FRACTION.fullmatch(s)
    if m and int(m.group(3)) != 0:
        return Fraction(int(m.group(2)), int(m.group(3))) * (-1 if m.group(1) else 1)
    return None


def number_key(value: Fraction | float) -> str:
    """Canonical key of a number: integers exactly, others rounded to 6 decimals (math-verify's float rounding)."""
    value = float(value)
    if value.is_integer() and abs(value) < 2**53:
        return f"num:{int(value)}"
    return f"num:{round(value, 6)!r}"


def gold_answer(text: str, answer_format: AnswerFormat = "auto") -> str:
    """The reference answer held in a dataset's answer field: GSM8K's worked answer reduced to the number after
    ``####`` (thousands separators removed); any other answer (MATH-500's) stripped. ``auto`` reads GSM8K's layout
    when the text contains ``####``. A GSM8K answer without ``####`` is an error, never taken whole as the answer."""
    text = str(text)
    if answer_format == "auto":
        answer_format = "gsm8k" if "####" in text else "plain"
    if answer_format == "gsm8k":
        if "####" not in text:
            raise ValueError(f"GSM8K answer has no '#### N' line: {text[-80:]!r}")
        return text.rsplit("####", 1)[1].strip().replace(",", "")
    if answer_format == "plain":
        return text.strip()
    raise ValueError(f"Unknown answer_format {answer_format!r}; choose auto, plain or gsm8k")


class MathGrader:
    """Answer equivalence and canonical forms via math-verify, each call bounded by ``timeout_s``; results cached.

    Thread safe (one request at a time). ``timeouts`` counts comparisons that were cut off.
    """

    def __init__(self, timeout_s: float = 5.0, max_chars: int = 1000, fast_numbers: bool = True):
        if timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        self.timeout_s = timeout_s
        self.max_chars = max_chars
        self.fast_numbers = fast_numbers  # plain numbers handled here, with the worker's semantics
        # math-verify's own per-operation alarm (whole seconds); a comparison is 2 parses + 1 verify.
        self._inner_timeout = max(1, int(timeout_s // 3))
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, str], object] = {}
        self.timeouts = 0

    def _start(self) -> None:
        env = dict(os.environ)
        # The worker imports this package; make it importable even when prmkit is not pip-installed.
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "prm.grading_worker", str(self._inner_timeout)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        if self._readline(120) != "ready":
            self.close()
            raise RuntimeError("math-verify worker did not start (python -m prm.grading_worker)")

    def _readline(self, timeout: float) -> str | None:
        ready, _, _ = select.select([self._proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self._proc.stdout.readline()
        return line.rstrip("\n") if line else None

    def close(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(Exception):
                self._proc.kill()
                self._proc.wait()
                self._proc.stdin.close()
                self._proc.stdout.close()
        self._proc = None

    def __del__(self):
        with contextlib.suppress(Exception):
            self.close()

    def _call(self, op: str, a: str, b: str):
        key = (op, a, b)
        if key in self._cache:
            return self._cache[key]
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            self._proc.stdin.write(json.dumps(key) + "\n")
            self._proc.stdin.flush()
            line = self._readline(self.timeout_s)
            if line is not None:
                result = json.loads(line)["result"]
            else:
                self.timeouts += 1
                logger.warning("Answer comparison exceeded %.1fs, counted as unequal: %r", self.timeout_s, key[1:][:2])
                self.close()
                result = None
        self._cache[key] = result
        return result

    def equivalent(self, pred: str | None, gold: str | None) -> bool:
        """Whether ``pred`` is the same answer as ``gold`` (math-verify's ``verify(gold, pred)``)."""
        if pred is None or gold is None or not pred.strip():
            return False
        if normalize_answer(pred) == normalize_answer(gold):
            return True
        if self.fast_numbers:
            a, b = plain_number(pred), plain_number(gold)
            if a is not None and b is not None and a.denominator == b.denominator == 1:
                return a == b
        if len(pred) > self.max_chars or len(gold) > self.max_chars:
            return False
        return self._call("equal", pred, gold) is True

    def canonical(self, answer: str) -> str:
        """A key shared by equivalent answers (see :func:`prm.grading_worker.canonical_form`); normalized string as the fallback."""
        if len(answer) > self.max_chars:
            return f"str:{normalize_answer(answer)}"
        if self.fast_numbers:
            value = plain_number(answer)
            if value is not None:
                return number_key(value)
        result = self._call("canonical", answer, "")
        return result if isinstance(result, str) else f"str:{normalize_answer(answer)}"


_default: MathGrader | None = None


def default_grader() -> MathGrader:
    global _default
    if _default is None:
        _default = MathGrader()
    return _default
