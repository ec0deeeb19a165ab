"""Stop-string handling and per-sample seeds shared by the backends."""

from __future__ import annotations

import hashlib
import random
from collections import Counter


def truncate_at_stop(text: str, stop: list[str] | None) -> tuple[str, str | None]:
    """Cut ``text`` right after the stop string that completes first (smallest end position), keeping it.

    Returns ``(text, matched_stop)``; ``matched_stop`` is None when no stop string occurs. "Completes first" is what
    token-by-token decoding sees: with stops ``["\\n", "\\n\\n"]`` on ``"a\\n\\nb"`` the result is ``"a\\n"``.
    """
    best_end, best_stop = None, None
    for s in stop or []:
        if not s:
            continue
        pos = text.find(s)
        if pos >= 0 and (best_end is None or pos + len(s) < best_end):
            best_end, best_stop = pos + len(s), s
    if best_end is None:
        return text, None
    return text[:best_end], best_stop


def sample_seeds(prompts: list[str], n: int, seed: int | None) -> list[list[int]]:
    """One 63-bit seed per (prompt, sample), from the call's seed, the prompt text, the how-many-th copy of that
    prompt in the call it is, and the sample index. A prompt therefore gets the same samples whatever other prompts
    share the call, and repeated prompts (N beams starting from one problem) still get different samples. A None
    seed draws a fresh one for the call (unseeded sampling)."""
    if seed is None:
        seed = random.SystemRandom().getrandbits(63)
    seen: Counter[str] = Counter()
    seeds = []
    for prompt in prompts:
        copy = seen[prompt]
        seen[prompt] += 1
        row = []
        for j in range(n):
            digest = hashlib.sha256(f"{seed}\x00{copy}\x00{j}\x00{prompt}".encode()).digest()
            row.append(int.from_bytes(digest[:8], "little") >> 1)
        seeds.append(row)
    return seeds
