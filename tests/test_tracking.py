"""W&B experiment tracking, offline (WANDB_MODE=offline): what a run wrote is read back from its .wandb file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForTokenClassification

from eval.config import ProcessBenchArguments, VerifierArguments
from prm.data import save_separator
from tests.conftest import REPO_ROOT
from tests.wandb_offline import logged_file, logged_table, offline_run

pytest.importorskip("wandb")


@pytest.fixture
def wandb_dir(tmp_path, monkeypatch):
    import wandb

    path = tmp_path / "wandb_runs"
    path.mkdir()
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(path))
    monkeypatch.setenv("WANDB_PROJECT", "prmkit-tests")
    wandb.teardown()  # wandb reads its environment once per process: start afresh with this test's directory
    yield path
    wandb.teardown()


def written_run(wandb_dir):
    """The run this process logged, once W&B's service has written it out (as at process exit: run.finish()
    can return before the service has flushed the file)."""
    import wandb

    wandb.teardown()
    return offline_run(wandb_dir)


def test_training_run_reports_prm_metrics_and_processbench_to_wandb(tmp_path, wandb_dir):
    out = tmp_path / "model"
    result = subprocess.run(
        [sys.executable, "recipes/train_prm.py", "--config", "recipes/tiny/cpu.yaml", "--output_dir", str(out)]
        + ["--report_to", "wandb", "--run_name", "tiny-prm", "--max_steps", "4", "--logging_steps", "1"]
        + ["--eval_strategy", "steps", "--eval_steps", "2", "--max_train_samples", "32", "--max_eval_samples", "16"]
        + ["--max_length", "256", "--processbench_eval_limit", "4", "--disable_tqdm", "true"],
        cwd=REPO_ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    run_dir, history, config = offline_run(wandb_dir)
    assert config["run_name"] == "tiny-prm" and config["step_separator"] == "\n\n"  # the PRMConfig is the config

    # The Trainer's losses, step by step, are what trainer_state.json recorded.
    state = json.loads((out / "trainer_state.json").read_text())["log_history"]
    losses = {h["train/global_step"]: h["train/loss"] for h in history if "train/loss" in h}
    assert losses == {h["step"]: pytest.approx(h["loss"]) for h in state if "loss" in h}
    assert sorted(losses) == [1, 2, 3, 4]
    # Evaluation at steps 2 and 4, then the recipe's final evaluation, with the PRM metrics: step accuracy and
    # first-error F1.
    evals = [h for h in history if "eval/step_accuracy" in h]
    assert [h["train/global_step"] for h in evals] == [2, 4, 4]
    expected = [h for h in state if "eval_step_accuracy" in h]
    assert len(expected) == 3
    for logged, saved in zip(evals, expected):
        assert logged["eval/step_accuracy"] == pytest.approx(saved["eval_step_accuracy"])
        assert logged["eval/first_error_f1"] == pytest.approx(saved["eval_first_error_f1"])
        assert 0.0 <= logged["eval/step_accuracy"] <= 1.0

    # The ProcessBench callback at the end of training logs into the same run: scalars and the per-split table.
    (pb,) = [h for h in history if "processbench/average_f1" in h]
    saved = json.loads((out / "processbench_results.json").read_text())
    assert pb["train/global_step"] == 4 and pb["processbench/average_f1"] == pytest.approx(saved["average_f1"])
    table = logged_table(run_dir, pb, "processbench/results")
    assert [row["split"] for row in table] == saved["settings"]["splits"]
    for row in table:
        assert row["f1"] == pytest.approx(saved[row["split"]]["f1"])
        assert row["num_erroneous"] + row["num_correct"] == 4


def test_processbench_results_are_logged_with_table_and_plot(tmp_path, wandb_dir, tiny_prm_dir, real_data):
    from recipes.eval_prm import main

    out = tmp_path / "out"
    args = ProcessBenchArguments(
        output_dir=str(out), data_dir=str(real_data / "processbench"), splits=["gsm8k", "math"], limit=30,
        sweep=True, report_to="wandb", run_name="pb-tiny",
    )  # fmt: skip
    results = main(args, VerifierArguments(model_name_or_path=tiny_prm_dir))
    run_dir, history, config = written_run(wandb_dir)
    assert config["model"] == tiny_prm_dir and config["splits"] == ["gsm8k", "math"]  # results.json's settings
    (row,) = history
    on_disk = json.loads((out / "processbench" / "results.json").read_text())
    assert results["average_f1"] == on_disk["average_f1"]
    assert row["processbench/average_f1"] == pytest.approx(on_disk["average_f1"])
    assert row["processbench/gsm8k_f1"] == pytest.approx(on_disk["gsm8k"]["f1"])
    table = logged_table(run_dir, row, "processbench/results")
    assert [r["split"] for r in table] == ["gsm8k", "math"]
    for r in table:
        for column in ("error_acc", "correct_acc", "f1", "num_erroneous", "num_correct"):
            assert r[column] == pytest.approx(on_disk[r["split"]][column])
    sweep = logged_table(run_dir, row, "processbench/f1_vs_threshold")
    assert len(sweep) == 19 and all(
        r["gsm8k"] == pytest.approx(on_disk["sweep"]["gsm8k"][f"{r['threshold']:.2f}"]) for r in sweep
    )
    assert row["processbench/f1_vs_threshold_plot/_type"] == "image-file"
    assert logged_file(run_dir, row, "processbench/f1_vs_threshold_plot").stat().st_size > 1000


@pytest.fixture(scope="module")
def tiny_search_dirs(tmp_path_factory):
    from transformers import AutoModelForCausalLM

    from prm.testing import build_tiny_tokenizer, tiny_qwen2_config

    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer()
    root = tmp_path_factory.mktemp("tiny_search")
    AutoModelForCausalLM.from_config(tiny_qwen2_config(len(tokenizer))).save_pretrained(root / "lm")
    prm = AutoModelForTokenClassification.from_config(tiny_qwen2_config(len(tokenizer), num_labels=2))
    save_separator(prm.config, "\n\n")
    prm.save_pretrained(root / "prm")
    for name in ("lm", "prm"):
        tokenizer.save_pretrained(root / name)
    return root


def test_search_results_are_logged_with_table_and_scaling_plot(tmp_path, wandb_dir, tiny_search_dirs):
    from trl import TrlParser

    from recipes.run_search import main
    from search.config import DatasetArguments, SearchConfig, SearchScriptArguments
    from search.generators import GeneratorArguments

    parser = TrlParser((SearchScriptArguments, SearchConfig, DatasetArguments, GeneratorArguments))
    out = tmp_path / "out"
    args = parser.parse_args_and_config(
        args=["--config", "recipes/tiny/search_cpu.yaml", "--output_dir", str(out), "--report_to", "wandb"]
        + ["--generator_model_name_or_path", str(tiny_search_dirs / "lm"), "--prm_path", str(tiny_search_dirs / "prm")]
    )
    metrics = main(*args)
    run_dir, history, config = written_run(wandb_dir)
    assert config["search"]["method"] == "beam_search" and config["search"]["n"] == 4  # search_config.json
    (row,) = history
    table = logged_table(run_dir, row, "search/accuracy")
    assert {(r["metric"], r["n"]): r["accuracy"] for r in table} == {
        (m, int(n)): acc for m in ("naive", "weighted", "maj", "pass") for n, acc in metrics[m].items()
    }
    assert row["search/weighted@4"] == pytest.approx(metrics["weighted"][4])
    assert row["search/mean_generated_tokens_per_problem"] == pytest.approx(
        metrics["mean_generated_tokens_per_problem"]
    )
    assert logged_file(run_dir, row, "search/scaling_plot").stat().st_size > 1000


def test_report_to_is_off_by_default_and_checked(tmp_path):
    from search.config import SearchConfig

    assert ProcessBenchArguments(output_dir="o").report_to == "none" and SearchConfig().report_to == "none"
    with pytest.raises(ValueError, match="report_to"):
        ProcessBenchArguments(output_dir="o", report_to="mlflow")
    with pytest.raises(ValueError, match="report_to"):
        SearchConfig(report_to="mlflow")
