"""Bad input on every entry point: each recipe run as a user runs it (a subprocess) on a malformed config, data
file or candidate pool exits non-zero with one line naming the file and the line or row, no traceback, and leaves
no output file that looks complete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from prm.atomic import atomic_write
from prm.cli import ConfigError, check_config_keys
from tests.conftest import REPO_ROOT


def run_recipe(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "recipes" / script), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def error_line(proc: subprocess.CompletedProcess, status: int) -> str:
    """The one line the recipe printed for the error (after any logging), checked to be the only one."""
    assert proc.returncode == status, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if ": error: " in line or ": configuration error: " in line]
    assert len(lines) == 1, proc.stderr[-2000:]
    return lines[0]


# ---- YAML configs: an unknown or misspelt key in any recipe's config ----------------------------------------------

MISSPELT = {
    "train_prm.py": ("dataset_name: x\noutput_dir: out\nlearning_rat: 1.0e-5\n", 3, "learning_rat", "learning_rate"),
    "eval_prm.py": ("model_name_or_path: m\noutput_dir: out\nthresold: 0.5\n", 3, "thresold", "threshold"),
    "evaluate_pool.py": ("input: r.jsonl\noutput_dir: out\n\nagg_stratgy: min\n", 4, "agg_stratgy", "agg_strategy"),
    "run_search.py": ("output_dir: out\nmethod: dvts\nbeam_widht: 4\n", 3, "beam_widht", "beam_width"),
    "demo.py": ("output_dir: out\nsedes: [0]\n", 2, "sedes", "seeds"),
    "arith/train_policy.py": ("output_dir: out\neval_problem: 3\n", 2, "eval_problem", "eval_problems"),
    "compute_optimal.py": ("runs: [a]\noutput_dir: out\nnum_bin: 3\n", 3, "num_bin", "num_bins"),
}


@pytest.mark.parametrize("script", sorted(MISSPELT))
def test_every_recipe_names_a_misspelt_yaml_key_with_its_file_and_line(script, tmp_path):
    text, line, key, suggestion = MISSPELT[script]
    config = tmp_path / "config.yaml"
    config.write_text(text)
    message = error_line(run_recipe(script, "--config", str(config)), 2)
    assert f"{config}, line {line}: unknown key {key!r} (did you mean {suggestion!r}?)" in message
    assert not (tmp_path / "out").exists() and not (REPO_ROOT / "out").exists()


def test_config_files_that_are_not_yaml_mappings_are_named(tmp_path):
    from search.config import SearchConfig

    broken = tmp_path / "broken.yaml"
    broken.write_text("n: 4\nmethod: [dvts\nseed: 1\n")
    with pytest.raises(ConfigError, match=rf"{broken}, line \d: not valid YAML"):
        check_config_keys(str(broken), [SearchConfig])
    twice = tmp_path / "twice.yaml"
    twice.write_text("n: 4\nseed: 1\nn: 8\n")
    with pytest.raises(ConfigError, match=rf"{twice}, line 3: key 'n' appears twice"):
        check_config_keys(str(twice), [SearchConfig])
    listed = tmp_path / "list.yaml"
    listed.write_text("- n\n- 4\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        check_config_keys(str(listed), [SearchConfig])
    with pytest.raises(ConfigError, match="no such config file"):
        check_config_keys(str(tmp_path / "missing.yaml"), [SearchConfig])
    ok = tmp_path / "ok.yaml"
    ok.write_text("n: 4\nenv:\n  A: b\n")
    check_config_keys(str(ok), [SearchConfig])


# ---- ProcessBench-layout files for eval_prm.py --------------------------------------------------------------------


def processbench_rows(real_data: Path, n: int = 3) -> list[dict]:
    return json.loads((real_data / "processbench" / "gsm8k.json").read_text())[:n]


@pytest.mark.parametrize("case", ["invalid_json", "label_out_of_range", "label_of_another_type", "steps_not_a_list"])
def test_eval_prm_names_the_file_and_row_of_a_malformed_processbench_file(case, tmp_path, real_data):
    data = tmp_path / "data"
    data.mkdir()
    path = data / "gsm8k.json"
    rows = processbench_rows(real_data)
    if case == "invalid_json":
        path.write_text(json.dumps(rows, indent=1)[:-30])
        expected = f"{path}, line "
    else:
        if case == "label_out_of_range":
            rows[2]["label"] = 40
        elif case == "label_of_another_type":
            rows[1]["label"] = "two"  # the other rows hold integers: the table cannot be built
        else:
            rows[1]["steps"] = "one long step"
        path.write_text(json.dumps(rows))
        row = 2 if case == "label_out_of_range" else 1
        field = "steps" if case == "steps_not_a_list" else "label"
        expected = f"{path}: ProcessBench split 'gsm8k', row {row} (id {rows[row]['id']!r}): field {field!r}"
    out = tmp_path / "out"
    # The model does not exist: the data is checked before any model is loaded.
    proc = run_recipe(
        "eval_prm.py", "--model_name_or_path", str(tmp_path / "no_model"), "--output_dir", str(out),
        "--data_dir", str(data), "--splits", "gsm8k",
    )  # fmt: skip
    assert expected in error_line(proc, 1)
    assert not out.exists()


# ---- datasets for search --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["invalid_json_line", "missing_problem", "no_gold_answer", "not_an_object"])
def test_search_names_the_file_and_row_of_a_malformed_dataset(case, tmp_path):
    rows = [{"problem": f"What is {i}+{i}?", "answer": str(2 * i)} for i in range(4)]
    lines = [json.dumps(r) for r in rows]
    if case == "invalid_json_line":
        lines[2] = lines[2][:-5]
        expected = "line 3: not valid JSON"
    elif case == "missing_problem":
        lines[1] = json.dumps({"answer": "2"})
        expected = "row 1: field 'problem' must be a non-empty string"
    elif case == "no_gold_answer":
        lines[3] = json.dumps({"problem": "p", "answer": ""})
        expected = "row 3: field 'answer' must hold the gold answer"
    else:
        lines[2] = "[1, 2]"
        expected = "line 3: expected a JSON object"
    data = tmp_path / "problems.jsonl"
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    proc = run_recipe(
        "run_search.py", "--output_dir", str(out), "--prm_path", str(tmp_path / "no_prm"),
        "--generator_model_name_or_path", str(tmp_path / "no_lm"), "--dataset_name", str(data),
    )  # fmt: skip
    assert f"{data}, {expected}" in error_line(proc, 1)
    assert not (out / "results.jsonl").exists() and not (out / "metrics.json").exists()


# ---- candidate pools for evaluate_pool.py ---------------------------------------------------------------------------


def pool_row(index: int) -> dict:
    return {
        "index": index,
        "problem": f"p{index}",
        "answer": "4",
        "completions": ["So \\boxed{4}", "So \\boxed{5}"],
        "scores": [[0.9], [0.2]],
    }


@pytest.mark.parametrize("case", ["scores_do_not_match", "scores_not_numbers", "no_answer_field", "not_an_object"])
def test_evaluate_pool_names_the_file_and_line_of_a_malformed_pool(case, tmp_path):
    rows = [pool_row(i) for i in range(3)]
    if case == "scores_do_not_match":
        rows[1]["scores"] = [[0.9]]
        expected = "line 2 (index=1): field 'scores' has 1 entries for 2 completions"
    elif case == "scores_not_numbers":
        rows[2]["scores"] = [[0.9], ["high"]]
        expected = "line 3 (index=2): field 'scores' must hold one list of numbers per completion"
    elif case == "no_answer_field":
        del rows[0]["answer"]
        expected = "line 1 (index=0): missing field 'answer'"
    else:
        rows[1] = [1, 2]
        expected = "line 2 (index=?): expected a JSON object"
    pool = tmp_path / "results.jsonl"
    pool.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "eval"
    proc = run_recipe("evaluate_pool.py", "--input", str(pool), "--output_dir", str(out))
    assert f"{pool}, {expected}" in error_line(proc, 1)
    assert not (out / "metrics.json").exists() and not (out / "scaling.png").exists()


# ---- outputs are whole or absent ------------------------------------------------------------------------------------


def test_a_failed_write_leaves_neither_the_file_nor_a_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    with pytest.raises(RuntimeError), atomic_write(target) as f:
        f.write('{"weighted": ')
        raise RuntimeError("killed while writing")
    assert list(tmp_path.iterdir()) == []
    with atomic_write(target) as f:
        f.write("{}")
    assert target.read_text() == "{}" and list(tmp_path.iterdir()) == [target]


def recipe_arguments() -> dict[str, tuple[type, ...]]:
    """Each recipe's dataclasses, by the YAML files that configure it."""
    from trl import ModelConfig

    from eval.compute_optimal.config import ComputeOptimalArguments
    from eval.config import ProcessBenchArguments, VerifierArguments
    from prm.training import PRMConfig
    from prm.training.pipeline import PRMScriptArguments
    from recipes.arith.train_policy import PolicyScriptArguments, PolicyTrainingConfig
    from search.config import DatasetArguments, SearchConfig, SearchScriptArguments
    from search.generators import GeneratorArguments

    return {
        "train_prm": (PRMScriptArguments, PRMConfig, ModelConfig),
        "eval_prm": (ProcessBenchArguments, VerifierArguments),
        "search": (SearchScriptArguments, SearchConfig, DatasetArguments, GeneratorArguments),
        "train_policy": (PolicyScriptArguments, PolicyTrainingConfig),
        "compute_optimal": (ComputeOptimalArguments,),
    }


def recipe_of(path: Path) -> str:
    name = path.stem
    if name in ("best_of_n", "beam_search", "dvts", "search_cpu"):
        return "search"
    if name.startswith("policy"):
        return "train_policy"
    if name in ("eval", "compute_optimal"):
        return {"eval": "eval_prm"}.get(name, name)
    return "train_prm"  # the training configs: cpu.yaml, prm.yaml, math_shepherd_*.yaml, prm800k_*.yaml


def test_every_shipped_yaml_passes_the_key_check_of_its_recipe():
    arguments = recipe_arguments()
    paths = sorted((REPO_ROOT / "recipes").rglob("*.yaml"))
    assert len(paths) >= 15
    for path in paths:
        check_config_keys(str(path), arguments[recipe_of(path)])
