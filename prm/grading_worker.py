"""The math-verify worker of :class:`prm.grading.MathGrader`: JSON lines in, JSON lines out.

Run as ``python -m prm.grading_worker INNER_TIMEOUT``. Requests are ``["equal", pred, gold]`` or
``["canonical", answer, ""]``; each answer is ``{"result": ...}`` (None when math-verify failed).
"""

from __future__ import annotations

import json
import logging
import sys

from prm.grading import normalize_answer, number_key


def _parse(answer: str, timeout: int):
    from math_verify import parse

    return parse("\\boxed{" + answer + "}", parsing_timeout=timeout)


def canonical_form(answer: str, timeout: int) -> str:
    """Equivalent answers get the same key: numbers by value (integers exactly, others rounded to 6 decimals),
    other expressions by sympy's printed form, ``x = v`` by ``v``; unparsable answers by their normalized string."""
    import sympy

    parsed = _parse(answer, timeout)
    expr = parsed[0] if parsed else None
    if isinstance(expr, sympy.Eq) and isinstance(expr.lhs, sympy.Symbol):
        expr = expr.rhs
    if isinstance(expr, sympy.Basic):
        if expr.is_number and expr.is_real:
            return number_key(float(expr))
        return f"expr:{expr}"
    return f"str:{normalize_answer(answer)}"


def equal(pred: str, gold: str, timeout: int) -> bool:
    from math_verify import verify

    return bool(verify(_parse(gold, timeout), _parse(pred, timeout), timeout_seconds=timeout))


def main() -> None:
    timeout = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    logging.disable(logging.WARNING)  # math-verify logs every internal timeout
    import math_verify  # noqa: F401  (loaded before "ready": start-up is not charged to a comparison)

    print("ready", flush=True)
    for line in sys.stdin:
        op, a, b = json.loads(line)
        try:
            result = equal(a, b, timeout) if op == "equal" else canonical_form(a, timeout)
        except Exception:  # math-verify/sympy errors mean "not comparable", never a crash
            result = None
        print(json.dumps({"result": result}), flush=True)


if __name__ == "__main__":
    main()
