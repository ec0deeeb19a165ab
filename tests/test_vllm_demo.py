"""The demo on vLLM engines: ``DemoConfig.backend`` reaches the policy sampling and every search run's generator,
and each model's engine is built once for all of them (a scaled-down seed on the shipped policies). The demo's PRM
adds its own step likelihood to each score (``recipes/arith/prm.yaml``), which vLLM's pooling does not return, so
it is scored with transformers in every stage (the vLLM verifier itself: ``tests/test_vllm_verifier.py``).

Runs in the vLLM venv (``make env-vllm``); skipped where vLLM is not installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("vllm")

pytestmark = pytest.mark.vllm

REPO_ROOT = Path(__file__).resolve().parents[1]
POLICY = REPO_ROOT / "recipes" / "arith" / "policy"


def test_demo_backend_reaches_sampling_evaluation_and_every_search(tmp_path):

    from arith_demo.demo import DemoConfig, StageTimer, run_seed
    from arith_demo.engines import Engines, resolve_backend
    from prm.verifiers import TokenClassificationVerifier
    from search.generators.vllm_backend import VLLMGenerator

    config = DemoConfig(
        output_dir=str(tmp_path),
        seeds=[0],
        backend="vllm",
        policy_path=str(POLICY),
        large_policy_path=None,  # another generator through the same code; it would add ~30 s
        train_problems=8,
        samples_per_problem=2,
        synthetic_problems=64,
        mc_solutions=4,
        mc_rollouts=2,
        num_eval_solutions=8,
        num_search_problems=4,
        n=4,
        tree_ns=[4],
        prm_max_steps=2,  # the plumbing is under test here, not the PRM (tests/test_demo_loop.py)
    )
    assert resolve_backend("auto") == "vllm"  # vLLM imports in this venv
    engines = Engines(resolve_backend(config.backend))
    try:
        result = run_seed(config, 0, engines, StageTimer())
        built = dict(engines._built)
    finally:
        engines.close()

    out = tmp_path / "seed_0"
    prm = str(out / "prm")
    # One engine per model, whatever the number of stages and runs that used it.
    assert set(built) == {("generator", str(POLICY)), ("verifier", prm)}
    assert isinstance(built[("generator", str(POLICY))], VLLMGenerator)
    assert isinstance(built[("verifier", prm)], TokenClassificationVerifier)
    assert built[("verifier", prm)].step_likelihood_weight is not None

    evaluation = json.loads((out / "eval" / "processbench" / "results.json").read_text())
    assert evaluation["settings"]["verifier_backend"] == "transformers"
    for run in ["best_of_n", "beam_search_n4", "dvts_n4"]:
        settings = json.loads((out / run / "search_config.json").read_text())
        assert settings["generator"]["generator_backend"] == "vllm", run
        assert settings["verifier"]["verifier_backend"] == "transformers", run
        rows = [json.loads(line) for line in (out / run / "results.jsonl").read_text().splitlines()]
        assert len(rows) == 4 and all(len(r["completions"]) == 4 for r in rows), run
    # The shipped policy sampled through vLLM still solves what it solves in transformers (53% of its samples are
    # right): a wrong prompt encoding or a wrong model would bring this near 0.
    assert result["data"]["policy_sample_accuracy"] > 0.2
    assert result["policy"]["single"] > 0.2  # the Best-of-N pools
