"""recipes/evaluate_pool.py: metrics of a stored pool, and re-scoring it with another verifier."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eval.pool_config import PoolEvalArguments
from prm.verifiers import load_verifier
from recipes.evaluate_pool import main
from search.results import read_results

REPO_ROOT = Path(__file__).resolve().parents[1]


PROBLEMS = [
    ("What is 2+3?", "5", ["2+3=5\n\nSo \\boxed{5}", "2+3=6\n\nSo \\boxed{6}", "Think.\n\nThe answer is 5."]),
    ("Half of 1?", "\\frac{1}{2}", ["1/2\n\n\\boxed{0.5}", "\\boxed{2}", "Hmm\n\nstill\n\n\\boxed{0.5}"]),
]


def _write_pool(path: Path) -> list[dict]:
    rows = []
    for i, (problem, gold, completions) in enumerate(PROBLEMS):
        steps = [c.split("\n\n") for c in completions]
        rows.append(
            {
                "index": i,
                "problem": problem,
                "answer": gold,
                "completions": completions,
                "scores": [[0.1 * (k + 1)] * len(s) for k, s in enumerate(steps)],  # later completions score higher
                "pred": "",
                "completion_tokens": [len(c) for c in completions],
                "generated_tokens": sum(len(c) for c in completions),
                "verifier_tokens": 0,
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def test_metrics_of_a_stored_pool(tmp_path):
    rows = _write_pool(tmp_path / "results.jsonl")
    out = tmp_path / "eval"
    metrics = main(PoolEvalArguments(input=str(tmp_path), output_dir=str(out)))  # a run directory works too
    saved = json.loads((out / "metrics.json").read_text())
    assert (out / "scaling.png").stat().st_size > 0
    assert not (out / "results.jsonl").exists()  # nothing re-scored, nothing rewritten
    # naive@3 picks the last completion of each problem: "5" (right) and 0.5 (right); naive@2: 6 and 2 (wrong).
    assert saved["naive"] == {"1": 100.0, "2": 0.0, "3": 100.0}
    assert saved["pass"]["1"] == 100.0 and saved["maj"]["3"] == 100.0
    assert metrics["num_problems"] == len(rows) and saved["mean_generated_tokens_per_problem"] > 0
    with pytest.raises(FileNotFoundError, match="No results file"):
        main(PoolEvalArguments(input=str(tmp_path / "missing.jsonl"), output_dir=str(out)))


def test_rescoring_with_another_verifier(tmp_path, token_cls_dir):
    rows = _write_pool(tmp_path / "results.jsonl")
    out = tmp_path / "eval"
    metrics = main(
        PoolEvalArguments(
            input=str(tmp_path / "results.jsonl"),
            output_dir=str(out),
            prm_path=token_cls_dir,
            agg_strategy="min",
            prm_device="cpu",
        )
    )
    rescored = read_results(out / "results.jsonl")
    verifier = load_verifier(token_cls_dir, device="cpu")
    for before, after in zip(rows, rescored):
        steps = [c.split("\n\n") for c in before["completions"]]
        assert after["steps"] == steps  # split on the separator: the rows had no "steps"
        expected = verifier.score([before["problem"]] * len(steps), steps)
        assert [len(s) for s in after["scores"]] == [len(s) for s in steps]
        for got, want in zip(after["scores"], expected):
            assert got == pytest.approx(want, abs=1e-5)
        assert after["scores"] != before["scores"]
        assert after["agg_scores"] == pytest.approx([min(s) for s in expected], abs=1e-5)
        assert after["verifier_tokens"] > 0 and after["completions"] == before["completions"]
    # The metrics of the new scores, counted by hand: in both problems completions 0 and 2 give the right answer
    # (the same one) and completion 1 a wrong one.
    right, same_answer = [True, False, True], [0, 1, 0]  # per completion: correct? which answer group?
    expected = {m: {} for m in ("naive", "weighted", "maj", "pass")}
    for n in (1, 2, 3):
        hits = {m: 0 for m in expected}
        for row in rescored:
            scores = row["agg_scores"][:n]
            hits["naive"] += right[max(range(n), key=lambda i: (scores[i], -i))]
            group_sums = [sum(s for s, g in zip(scores, same_answer) if g == group) for group in (0, 1)]
            hits["weighted"] += n == 1 or group_sums[0] >= group_sums[1]  # ties: the group seen first
            hits["maj"] += True  # group 0 comes first and is never outnumbered
            hits["pass"] += True
        for m in expected:
            expected[m][n] = 100.0 * hits[m] / len(rescored)
    assert {k: metrics[k] for k in expected} == expected


def test_cli_reports_a_malformed_results_file(tmp_path):
    bad = tmp_path / "results.jsonl"
    bad.write_text('{"index": 0, "problem": "p"}\n{"index": 1, "probl')
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "recipes" / "evaluate_pool.py"),
            "--input",
            str(bad),
            "--output_dir",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert proc.returncode == 1
    assert "line 2" in proc.stderr and "Traceback" not in proc.stderr
