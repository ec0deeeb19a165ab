"""The vLLM generator on the CPU build of vLLM: the same text, finish reasons and token counts as the transformers
backend at temperature 0; seeded samples that repeat and ignore batch neighbours; engine arguments from the config;
Best-of-N, beam search and DVTS end to end through the search recipe.

Runs in the vLLM venv (``make env-vllm``); skipped where vLLM is not installed.
"""

from __future__ import annotations

import gc
import json

import pytest

pytest.importorskip("vllm")

from search.config import DatasetArguments, SearchConfig  # noqa: E402
from search.generators import GeneratorArguments, SamplingConfig, load_generator  # noqa: E402
from search.results import read_results  # noqa: E402
from tests import vllm_models  # noqa: E402

pytestmark = pytest.mark.vllm

PROMPTS = ["Start with 7. Add 5.", "What is 2+3?", "x", "Compute 7*6 and add 1, then explain."]
STOPS = ["a", "e", "\n"]
ENGINE = {"kv_cache_memory_bytes": 256 * 2**20}


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    return vllm_models.save_causal_lm(tmp_path_factory.mktemp("vllm_lm") / "lm")


@pytest.fixture(scope="module")
def engine(lm_dir):
    gen = load_generator("vllm", lm_dir, engine_kwargs=ENGINE | {"max_num_seqs": 64})
    yield gen
    del gen.llm
    gc.collect()


@pytest.fixture(scope="module")
def reference(lm_dir):
    return load_generator("transformers", lm_dir, device="cpu", max_batch_size=7)


def test_cpu_defaults_and_engine_arguments_from_the_config(engine):
    config = engine.llm.llm_engine.vllm_config
    assert config.scheduler_config.enable_chunked_prefill is False  # seeded sampling + chunked prefill crash on CPU
    assert config.scheduler_config.max_num_batched_tokens >= 65536
    assert config.scheduler_config.max_num_seqs == 64  # passed through engine_kwargs
    assert str(config.model_config.dtype) == "torch.float32"  # auto means float32 on CPU, as for transformers
    assert config.cache_config.enable_prefix_caching


def test_engine_arguments_parse_from_yaml_mapping_or_json():
    as_json = GeneratorArguments(generator_backend="vllm", generator_vllm_kwargs='{"max_num_seqs": 7}')
    as_mapping = GeneratorArguments(generator_backend="vllm", generator_vllm_kwargs={"max_num_seqs": 7})
    assert as_json.to_kwargs()["engine_kwargs"] == as_mapping.to_kwargs()["engine_kwargs"] == {"max_num_seqs": 7}
    with pytest.raises(ValueError, match="generator_vllm_kwargs"):
        GeneratorArguments(generator_backend="vllm", generator_vllm_kwargs="[1, 2]")


def _ascii_pair(rows) -> str | None:
    """Two printable ASCII characters in a row in some completion: a multi-token stop string that occurs."""
    for row in rows:
        text = row[0].text
        for i in range(len(text) - 1):
            if text[i : i + 2].isascii() and text[i : i + 2].isprintable():
                return text[i : i + 2]
    return None


def test_greedy_matches_transformers(engine, reference):
    plain = SamplingConfig(n=1, temperature=0.0, max_new_tokens=24, seed=0)
    got = engine.generate(PROMPTS, plain)
    assert got == reference.generate(PROMPTS, plain)
    assert {c.finish_reason for row in got for c in row} == {"length"}
    stop_sets = [STOPS] + ([[_ascii_pair(got), "\n\n"]] if _ascii_pair(got) else [])
    for stop in stop_sets:
        config = SamplingConfig(n=1, temperature=0.0, max_new_tokens=24, stop=stop, seed=0)
        got = engine.generate(PROMPTS, config)
        assert got == reference.generate(PROMPTS, config)
        assert "stop" in {c.finish_reason for row in got for c in row}


def test_same_seed_same_samples_whatever_the_neighbours(engine):
    config = SamplingConfig(n=4, temperature=1.0, max_new_tokens=16, stop=STOPS, seed=123)
    first = engine.generate(PROMPTS, config)
    assert engine.generate(PROMPTS, config) == first
    alone = engine.generate([PROMPTS[1]], config)[0]
    assert alone == first[1]
    assert engine.generate(PROMPTS[::-1], config)[::-1] == first
    assert len({c.text for c in first[3]}) > 1  # n samples of one prompt differ
    other = engine.generate(PROMPTS, SamplingConfig(**{**config.__dict__, "seed": 124}))
    assert other != first


def _run_recipe(tmp_path, real_data, lm_dir, prm_dir, method, verifier_backend="transformers"):
    from trl import TrlParser

    from recipes.run_search import main
    from search.config import SearchScriptArguments

    parser = TrlParser((SearchScriptArguments, SearchConfig, DatasetArguments, GeneratorArguments))
    out = tmp_path / method
    args = parser.parse_args_and_config(
        args=[
            "--config",
            "recipes/tiny/search_cpu.yaml",
            "--method",
            method,
            "--generator_backend",
            "vllm",
            "--generator_vllm_kwargs",
            json.dumps(ENGINE),
            "--verifier_backend",
            verifier_backend,
            "--verifier_vllm_kwargs",
            json.dumps(ENGINE),
            "--generator_model_name_or_path",
            lm_dir,
            "--prm_path",
            prm_dir,
            "--dataset_name",
            str(real_data / "math500" / "test.jsonl"),
            "--output_dir",
            str(out),
        ]
    )
    metrics = main(*args)
    # In-process engines share vLLM's process-wide parallel state: an engine collected later, while another one
    # runs, tears it down under it ("pipeline model parallel group is not initialized"). Collect it now.
    gc.collect()
    return read_results(out / "results.jsonl"), metrics


@pytest.mark.parametrize(
    ("method", "verifier_backend"),
    [("best_of_n", "transformers"), ("beam_search", "transformers"), ("dvts", "vllm")],
)
def test_search_recipe_runs_every_method_on_vllm(tmp_path, real_data, lm_dir, method, verifier_backend):
    prm_dir = vllm_models.save_token_cls(tmp_path / "prm")
    rows, metrics = _run_recipe(tmp_path, real_data, lm_dir, prm_dir, method, verifier_backend)
    assert [r["index"] for r in rows] == [0, 1, 2]
    for row in rows:
        assert row["method"] == method and len(row["completions"]) == 4
        assert all(isinstance(s, float) for scores in row["scores"] for s in scores)
        assert row["generated_tokens"] > 0 and row["verifier_tokens"] > 0
    # Best-of-N reports every budget up to N; beam search and DVTS only the one they ran.
    assert set(metrics["weighted"]) == ({1, 2, 4} if method == "best_of_n" else {4})
