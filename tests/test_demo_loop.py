"""A scaled-down version of ``make demo``: the same stages through the same recipes, on fewer problems.

It asserts what the demo is for: the trained PRM verifies (beats chance on held-out steps and on right vs corrupted
lines after the same prefix), it ranks samples better than a verifier that scores everything alike, and Monte-Carlo
labels beat labelling every step alike.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED = REPO_ROOT / "recipes" / "arith" / "policy"

pytestmark = pytest.mark.skipif(not (SHIPPED / "model.safetensors").is_file(), reason="shipped policy not built")


@pytest.mark.slow
def test_scaled_down_demo_loop_trains_a_prm_that_verifies_and_helps_search(tmp_path):
    from arith_demo.demo import DemoConfig, StageTimer, run_seed
    from arith_demo.engines import Engines
    from arith_demo.report import markdown_report, scaling_plot
    from arith_demo.summary import summary_block

    config = DemoConfig(
        output_dir=str(tmp_path),
        seeds=[0],
        train_problems=100,
        samples_per_problem=2,
        synthetic_problems=8000,
        mc_solutions=16,
        mc_rollouts=2,
        num_eval_solutions=80,
        num_search_problems=40,
        n=8,
        tree_ns=[4],
        # The demo's PRM (the larger policy's weights plus its step likelihood) checks lines from its first steps;
        # 200 are a quarter of make demo's budget.
        prm_max_steps=200,
    )
    timer = StageTimer()
    result = run_seed(config, 0, Engines("transformers"), timer)

    prm = result["prm"]
    # Held-out steps of real policy samples: the PRM ranks right steps above wrong ones.
    assert prm["step_auroc"] > 0.6
    # The same prefix ending in the right line or a corrupted one: the PRM prefers the right line (200 pairs;
    # chance is 0.5 with a standard deviation of 0.035).
    assert prm["line"]["pair_accuracy"] > 0.55
    assert prm["f1"] > 0.0
    # Search: a verifier that scores every sample alike ranks a right sample above a wrong one of the same problem
    # exactly half the time, and its weighted vote is majority vote. The PRM ranks right samples higher (the pairs
    # of the Best-of-8 pools; chance 0.5, standard deviation about 0.03), and its weighted vote is at least
    # majority vote.
    assert prm["ranking"] > 0.55
    best_of_n = result["search"]["best_of_n"]
    assert best_of_n["weighted"][8] >= best_of_n["maj"][8]
    # MC labels agree with the exact ones more often than labelling every step alike would, and catch most wrong
    # steps (a wrong prefix leaves no rollout a way to the right answer).
    mc = result["mc"]
    right_share = 1 - mc["num_wrong_steps"] / mc["num_steps"]
    assert mc["step_agreement"] > max(right_share, 1 - right_share)
    assert mc["recall_wrong"] > 0.5

    # The larger policy was sampled on the same problems; every method has per-problem correctness for paired gains.
    assert result["larger_policy"]["single"] > 100 * result["policy"]["single"]  # percent vs fraction
    assert len(result["per_problem"]["best_of_n"]["weighted"][8]) == config.num_search_problems
    settings = {**config.__dict__, "policy": config.policy_path, "timings": timer.times}
    summary = summary_block([result], settings, total_seconds=1.0)
    gain = summary["gain_over_majority_points"][8]["weighted_bon"]
    assert gain["ci95"][0] <= gain["gain"] <= gain["ci95"][1]
    report = markdown_report([result], settings, summary)
    assert "Does the PRM verify?" in report and "Closing note" in report and "Gain over majority vote" in report
    scaling_plot([result], tmp_path / "scaling.png")
    assert (tmp_path / "scaling.png").stat().st_size > 0

    # The compute-optimal stage analyses the seed's own runs: Best-of-8 prefixes and both tree searches at N = 4.
    from arith_demo.demo import LARGE_POLICY_RUN
    from arith_demo.scaling import compute_optimal_section, compute_optimal_stage

    analysis = compute_optimal_stage(tmp_path, [0], [4], bootstrap_samples=100, references=[LARGE_POLICY_RUN])
    # The larger policy is placed on the FLOPs axis: its single sample and its majority vote.
    assert [point["kind"] for point in analysis["references"]] == ["single sample", "majority@8"]
    assert analysis["num_problems"] == 40
    assert [row["budget"] for row in analysis["axes"]["n"]["budgets"]] == [1, 2, 4, 8]
    assert {s["method"] for s in analysis["strategies"]} == {"best_of_n", "beam_search", "dvts"}
    assert (tmp_path / "compute_optimal" / "compute_optimal.png").stat().st_size > 0
    section = "\n".join(compute_optimal_section(analysis))
    assert "Compute-optimal search" in section and "At N ≤ 8" in section
    # The FLOPs axis counts the PRM at its own size: the larger policy's weights plus a 2-class head (128 x 2 + 2).
    from arith_demo.summary import gains_markdown

    summary = summary_block([result], settings, analysis, total_seconds=1.0)
    counted = summary["larger_policy"]["parameters"]
    assert counted["prm"] - counted["larger_policy"] == 258 and counted["policy"] < counted["larger_policy"] / 3
    assert "FLOPs count the small policy" in "\n".join(gains_markdown(summary))


def test_mc_label_option_trains_the_prm_on_monte_carlo_labels_of_every_policy_sample(tmp_path, monkeypatch):
    import json
    from dataclasses import replace

    import prm.training.pipeline as pipeline
    from arith_demo.demo import DemoConfig, StageTimer, make_data, train_prm
    from arith_demo.policy import load_policy
    from search.generators.transformers_backend import TransformersGenerator

    config = DemoConfig(
        output_dir=str(tmp_path), train_problems=6, samples_per_problem=2, mc_rollouts=2, prm_labels="mc-soft"
    )
    model, tokenizer = load_policy(config.policy_path)
    generator = TransformersGenerator(model=model, tokenizer=tokenizer, device="cpu", max_batch_size=256)
    info = make_data(config, 0, generator, tmp_path, StageTimer())
    assert not (tmp_path / "prm_data").exists()  # nothing synthetic: only the policy's samples

    seen = {}
    monkeypatch.setattr(pipeline, "train_from_args", lambda script_args, *a, **k: seen.update(args=script_args))
    for labels, kind in (("mc-hard", bool), ("mc-soft", float)):
        rows = [json.loads(line) for line in (tmp_path / labels / "train.jsonl").read_text().splitlines()]
        # Every policy sample is rolled out (not just mc_solutions).
        assert len(rows) == info["policy_samples"] == info["train_rows"]
        assert {type(v) for row in rows for v in row["labels"]} == {kind}
        assert all(0.0 <= v <= 1.0 for row in rows for v in row["labels"])
        train_prm(replace(config, prm_labels=labels), 0, tmp_path)
        assert Path(seen["args"].dataset_name) == tmp_path / labels


def test_prm_starts_from_the_larger_policy_wherever_the_demo_runs_or_from_prm_init(tmp_path, monkeypatch):
    from dataclasses import replace

    import prm.training.pipeline as pipeline
    from arith_demo.demo import DemoConfig, train_prm

    seen = {}
    monkeypatch.setattr(pipeline, "train_from_args", lambda s, t, m, **k: seen.update(script=s, model=m))
    monkeypatch.chdir(tmp_path)  # prm.yaml's relative path does not exist from here
    config = DemoConfig(output_dir=str(tmp_path))
    train_prm(config, 0, tmp_path)
    assert Path(seen["model"].model_name_or_path) == REPO_ROOT / "recipes" / "arith" / "policy_large"
    assert seen["script"].tokenizer_name_or_path == config.policy_path  # the policy's tokenizer, shared by both
    train_prm(replace(config, prm_init="policy"), 0, tmp_path)
    assert seen["model"].model_name_or_path == config.policy_path
    train_prm(replace(config, prm_init=str(tmp_path / "mine")), 0, tmp_path)
    assert seen["model"].model_name_or_path == str(tmp_path / "mine")


def test_backend_auto_is_vllm_only_where_vllm_imports(monkeypatch):
    import sys

    from arith_demo.engines import resolve_backend

    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` raises ImportError, as in .venv
    assert resolve_backend("auto") == "transformers"
    assert resolve_backend("vllm") == "vllm"  # asked for explicitly: the engine itself says what is missing
    with pytest.raises(ValueError, match="backend must be auto, transformers or vllm"):
        resolve_backend("tensorrt")
