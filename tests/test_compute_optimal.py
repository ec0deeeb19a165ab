"""Compute-optimal analysis on constructed runs whose answer is known."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eval.compute_optimal import Run, build_table, compute_optimal, count_parameters, grade_runs
from eval.compute_optimal.selection import bootstrap_weights, difficulty_bins, fold_split, select
from prm.grading import MathGrader

REPO = Path(__file__).resolve().parents[1]


def solution(answer: int) -> str:
    return f"Add the numbers.\n\nTherefore, the final answer is: $\\boxed{{{answer}}}$."


def row(index, right: list[bool], method: str, scores=None, tokens=None, generated=None, verifier=100, **extra):
    """A results row of problem ``index`` (gold answer = index) whose completions are right where ``right`` is."""
    tokens = tokens or [10] * len(right)
    scores = scores or [0.5] * len(right)
    return {
        "index": index,
        "problem": f"problem {index}",
        "answer": str(index),
        "completions": [solution(index if ok else index + 1000 + k) for k, ok in enumerate(right)],
        "steps": [["Add the numbers.", "the answer"] for _ in right],
        "scores": [[s, s] for s in scores],
        "completion_tokens": tokens,
        "generated_tokens": sum(tokens) if generated is None else generated,
        "verifier_tokens": verifier,
        "method": method,
        **extra,
    }


def easy_hard_runs(num_problems: int = 40) -> list[Run]:
    """Best-of-N (A) gets the easy half right, beam search (B) the hard half; the PRM scores A high on easy ones."""
    easy = set(range(num_problems // 2))
    a = [row(i, [i in easy] * 4, "best_of_n", scores=[0.9 if i in easy else 0.1] * 4) for i in range(num_problems)]
    b = [row(i, [i not in easy] * 4, "beam_search") for i in range(num_problems)]
    return [Run("runs/A", a, "A", "best_of_n", 1e6, 1e6), Run("runs/B", b, "B", "beam_search", 1e6, 1e6)]


@pytest.fixture(scope="module")
def grader():
    grader = MathGrader()
    yield grader
    grader.close()


def test_per_bin_choice_and_compute_optimal_above_both(grader):
    result = compute_optimal(easy_hard_runs(), grader=grader, num_bins=2, votes=["weighted"], bootstrap_samples=200)
    at_4 = next(r for r in result["axes"]["n"]["budgets"] if r["budget"] == 4)
    for kind in ("oracle", "predicted"):
        # Level 1 (easy): A, whose first sample is as good as four there, so the cheapest A; level 2 (hard): B.
        assert at_4[kind]["choice_per_bin"] == ["A weighted@1", "B weighted@4"]
        assert at_4[kind]["cross_fitted"]["accuracy"] == 100.0
        assert at_4[kind]["cross_fitted_gain_over_best_single"]["ci95"][0] > 0
    singles = {s["name"]: s["accuracy"] for s in result["strategies"]}
    assert singles["A weighted@4"] == singles["B weighted@4"] == 50.0
    assert at_4["best_single"]["in_sample"]["accuracy"] == 50.0
    assert {m: v["strategy"] for m, v in at_4["methods"].items()} == {
        "A weighted": "A weighted@4",
        "B weighted": "B weighted@4",
    }
    # At N <= 2 only Best-of-N prefixes fit: nothing to choose between, the curve equals A.
    assert set(next(r for r in result["axes"]["n"]["budgets"] if r["budget"] == 2)["methods"]) == {"A weighted"}
    assert next(r for r in result["axes"]["n"]["budgets"] if r["budget"] == 2)["oracle"]["cross_fitted"][
        "accuracy"
    ] == pytest.approx(50.0)


def test_cross_fitted_never_above_in_sample_on_average():
    rng = np.random.default_rng(0)
    gaps = []
    for trial in range(60):
        correct = (rng.random((6, 80)) < rng.random((6, 1))).astype(float)
        bins = difficulty_bins(rng.random(80), 4)
        sel = select(correct, np.ones((1, 80)), bins, fold_split(bins, trial), np.array([2, 4, 6]))
        gaps.append(sel.in_sample[0] - sel.cross_fitted[0])
    assert np.mean(gaps, axis=0).min() > 0  # in-sample is optimistic: chosen and reported on the same problems


def test_bootstrap_rows_match_one_resample_at_a_time():
    """The vectorised bootstrap equals running the selection on each resample separately."""
    rng = np.random.default_rng(1)
    correct = (rng.random((5, 50)) < 0.5).astype(float)
    bins = difficulty_bins(rng.random(50), 3)
    folds = fold_split(bins, 0)
    weights = bootstrap_weights(50, 20, seed=3)
    allowed = np.array([1, 3, 5])
    together = select(correct, weights, bins, folds, allowed)
    for b in range(weights.shape[0]):
        alone = select(correct, weights[b : b + 1], bins, folds, allowed)
        np.testing.assert_allclose(together.in_sample[b], alone.in_sample[0])
        np.testing.assert_allclose(together.cross_fitted[b], alone.cross_fitted[0])


def test_token_and_flop_sums_match_hand_computed(grader):
    bon = [
        row(i, [True, False, True, False], "best_of_n", tokens=[10, 20, 30, 40], verifier=200, prompt_tokens=5)
        for i in range(2)
    ]
    beam = [row(i, [True] * 4, "beam_search", generated=500, verifier=300, prompt_tokens=5) for i in range(2)]
    runs = [
        Run("bon", bon, "bon", "best_of_n", 1e6, 2e6, np.array([5.0, 5.0])),
        Run("beam", beam, "beam", "beam_search", 1e6, 2e6, np.array([5.0, 5.0])),
    ]
    problems, pools = grade_runs(runs, grader)
    table = build_table(runs, problems, pools, ["weighted", "maj"])
    cost = {s.name: {axis: table.cost[axis][k][0] for axis in table.cost} for k, s in enumerate(table.strategies)}
    assert cost["bon weighted@2"]["tokens"] == 30
    assert cost["bon weighted@2"]["flops"] == 2e6 * (5 + 30) + 4e6 * 100  # half the pool: half the verifier tokens
    assert cost["bon maj@2"]["flops"] == 2e6 * (5 + 30)  # majority vote needs no verifier
    assert cost["bon weighted@4"]["flops"] == 2e6 * (5 + 100) + 4e6 * 200
    assert cost["beam weighted@4"]["tokens"] == 500  # pruned candidates included: the row's total
    assert cost["beam maj@4"]["flops"] == 2e6 * (5 + 500) + 4e6 * 300  # the search itself used the verifier
    assert cost["beam weighted@4"]["n"] == 4


def test_errors_name_the_run(grader):
    a, b = easy_hard_runs(10)
    fewer = Run("runs/short", b.rows[:8], "B", "beam_search", 1, 1)
    with pytest.raises(ValueError, match="run runs/short has 8 problems but run runs/A has 10"):
        grade_runs([a, fewer], grader)
    other = Run("runs/other", [dict(r, index=r["index"] + 100) for r in b.rows], "B", "beam_search", 1, 1)
    with pytest.raises(ValueError, match="run runs/other covers other problems"):
        grade_runs([a, other], grader)
    renamed = Run("runs/texts", [dict(r, problem="another") for r in b.rows], "B", "beam_search", 1, 1)
    with pytest.raises(ValueError, match="run runs/texts: problem index 0 has another text"):
        grade_runs([a, renamed], grader)
    missing = Run("runs/nocol", [{k: v for k, v in r.items() if k != "verifier_tokens"} for r in b.rows], "B", "x")
    with pytest.raises(ValueError, match="run runs/nocol: row index=0 has no field 'verifier_tokens'"):
        grade_runs([a, missing], grader)


def test_parameter_count_from_checkpoint(tmp_path):
    from transformers import LlamaForCausalLM

    from prm.testing import tiny_llama_config

    config = tiny_llama_config(100, hidden_size=32, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    expected = sum(p.numel() for p in model.parameters())
    model.save_pretrained(tmp_path / "model")
    assert count_parameters(tmp_path / "model") == (expected, "safetensors header")
    (tmp_path / "model" / "model.safetensors").unlink()
    assert count_parameters(tmp_path / "model") == (expected, "config.json estimate")
    with pytest.raises(ValueError, match="not a local checkpoint"):
        count_parameters("meta-llama/Llama-3.2-1B-Instruct")


def write_run(directory: Path, rows: list[dict], params: int | None = None) -> Path:
    directory.mkdir(parents=True)
    (directory / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    settings = {"search": {"method": rows[0]["method"], "system_prompt": None}, "verifier": {"prm_path": None}}
    (directory / "search_config.json").write_text(json.dumps(settings))
    return directory


def recipe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "recipes" / "compute_optimal.py"), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


def test_recipe_places_a_larger_policy_on_the_flops_axis(tmp_path):
    a, b = easy_hard_runs(20)
    # The larger policy: 10x the parameters, right on 70% of problems with every sample.
    big = [row(i, [i % 10 < 7] * 4, "best_of_n", prompt_tokens=0) for i in range(20)]
    dirs = [
        write_run(tmp_path / "A", [dict(r, prompt_tokens=0) for r in a.rows]),
        write_run(tmp_path / "B", [dict(r, prompt_tokens=0) for r in b.rows]),
        write_run(tmp_path / "big", big),
    ]
    out = tmp_path / "out"
    from eval.compute_optimal.config import ComputeOptimalArguments
    from search.compute_optimal import compute_optimal_from_args as main

    args = ComputeOptimalArguments(
        runs=[str(dirs[0]), str(dirs[1])],
        reference_runs=[str(dirs[2])],
        output_dir=str(out),
        policy_params=1000,
        verifier_params=1000,
        reference_params=[10_000],
        num_bins=2,
        bootstrap_samples=100,
    )
    main(args)
    result = json.loads((out / "compute_optimal.json").read_text())
    assert (out / "compute_optimal.png").stat().st_size > 10_000
    single = next(r for r in result["references"] if r["kind"] == "single sample")
    assert single["accuracy"] == 70.0 and single["flops"] == 2 * 10_000 * 10
    reach = single["reached_by"]["compute_optimal_oracle_cross_fitted"]
    # A and B at N = 4: 40 generated tokens and 100 verifier tokens per problem, 1,000 parameters each.
    assert reach["flops"] == 2 * 1000 * 40 + 2 * 1000 * 100
    assert reach["flops_ratio_to_reference"] == pytest.approx(280_000 / 200_000)
    assert single["reached_by"]["best_of_n weighted"]["flops"] is None  # A alone never reaches 70%
    assert result["compute"]["runs"][0]["policy_params_from"] == "given"


def test_recipe_errors_are_one_line(tmp_path):
    a, b = easy_hard_runs(10)
    dirs = [write_run(tmp_path / "A", a.rows), write_run(tmp_path / "short", b.rows[:7])]
    done = recipe(
        "--runs",
        *map(str, dirs),
        "--output_dir",
        str(tmp_path / "out"),
        "--policy_params",
        "1",
        "--verifier_params",
        "1",
        "--count_prompt_tokens",
        "false",
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("compute_optimal.py: error: run ")
    assert "short has 7 problems" in done.stderr and "Traceback" not in done.stderr
    (tmp_path / "bad.yaml").write_text(f"runs: [{dirs[0]}]\noutput_dir: {tmp_path}\nnum_binz: 3\n")
    done = recipe("--config", str(tmp_path / "bad.yaml"))
    # A configuration error (every recipe, prm.cli): status 2, the file, line and nearest key named.
    assert done.returncode == 2 and "line 3: unknown key 'num_binz' (did you mean 'num_bins'?)" in done.stderr
    assert "Traceback" not in done.stderr
    from eval.compute_optimal.config import ComputeOptimalArguments
    from search.compute_optimal import compute_optimal_from_args as main

    with pytest.raises(FileNotFoundError, match="nowhere: no results.jsonl"):
        main(ComputeOptimalArguments(runs=[str(tmp_path / "nowhere")], output_dir=str(tmp_path / "out")))


def test_runs_read_parameters_and_prompt_tokens_from_the_checkpoint():
    """Without given counts, a run's policy/verifier parameters come from the checkpoints its search_config.json
    names, and its prompt tokens are those the generator actually feeds the policy."""
    from eval.compute_optimal.loading import make_runs
    from search.generators.chat import count_prompt_tokens
    from search.generators.transformers_backend import TransformersGenerator

    policy = str(REPO / "recipes" / "arith" / "policy")
    rows = [row(i, [True], "best_of_n") for i in range(3)]
    settings = {
        "search": {"method": "best_of_n", "system_prompt": "Be brief."},
        "generator": {"generator_model_name_or_path": policy},
        "verifier": {"prm_path": policy},
    }
    [run], [compute] = make_runs([("runs/bon", rows, settings)], count_prompts=count_prompt_tokens)
    generator = TransformersGenerator(policy, device="cpu")
    expected = [len(generator.encode_prompt(generator.format_prompt(r["problem"], "Be brief."))) for r in rows]
    assert run.prompt_tokens.tolist() == expected
    assert run.policy_params == run.verifier_params == sum(p.numel() for p in generator.model.parameters())
    assert compute["policy_params_from"].startswith("safetensors header")
