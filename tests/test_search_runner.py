"""The search runner: a killed and resumed run writes the same file as an uninterrupted one; shards merge into
the unsharded results; the recipe runs end to end on tiny models and real MATH-500 / GSM8K rows."""

from __future__ import annotations

import json
import re

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForTokenClassification

from prm.data import save_separator
from prm.testing import build_tiny_tokenizer, tiny_qwen2_config
from prm.verifiers.base import Verifier
from prm.verifiers.token_cls import TokenClassificationVerifier
from search.config import DatasetArguments, SearchConfig, SearchScriptArguments
from search.generators.base import Completion, Generator
from search.results import merge_results, read_results
from search.runner import Problem, load_problems, run_search, write_metrics


def boxed(text: str) -> str | None:
    found = re.findall(r"\\boxed\{([^{}]*)\}", text)
    return found[-1] if found else None


class Crash(RuntimeError):
    pass


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer()
    root = tmp_path_factory.mktemp("tiny_search")
    lm = AutoModelForCausalLM.from_config(tiny_qwen2_config(len(tokenizer)))
    lm.save_pretrained(root / "lm")
    tokenizer.save_pretrained(root / "lm")
    prm = AutoModelForTokenClassification.from_config(tiny_qwen2_config(len(tokenizer), num_labels=2))
    # The usual newline separator: the byte-level tiny tokenizer keeps newlines when AutoTokenizer reloads it as
    # Qwen2Tokenizer (a qwen2 config.json sits next to it).
    save_separator(prm.config, "\n\n")
    prm.save_pretrained(root / "prm")
    tokenizer.save_pretrained(root / "prm")
    return root


@pytest.fixture(scope="module")
def components(tiny_dirs):
    from search.generators.transformers_backend import TransformersGenerator

    generator = TransformersGenerator(str(tiny_dirs / "lm"), device="cpu")
    verifier = TokenClassificationVerifier.from_pretrained(str(tiny_dirs / "prm"), device="cpu", dtype=torch.float32)
    assert verifier.step_separator == "\n\n"
    ids = verifier.tokenizer("\n\n", add_special_tokens=False)["input_ids"]
    assert verifier.tokenizer.decode(ids) == "\n\n"  # the reloaded tokenizer keeps the separator
    return generator, verifier


def config_for(method: str) -> SearchConfig:
    return SearchConfig(
        method=method,
        n=4,
        beam_width=2,
        num_iterations=3,
        max_step_tokens=4,
        max_tokens=12,
        search_batch_size=2,
        system_prompt=None,
        seed=7,
    )


@pytest.mark.parametrize("method", ["beam_search", "dvts"])
def test_killed_and_resumed_run_writes_the_same_file(tmp_path, real_data, components, method):
    generator, verifier = components
    problems = load_problems(DatasetArguments(dataset_name=str(real_data / "math500" / "test.jsonl"), dataset_end=5))
    config = config_for(method)
    reference = run_search(problems, generator, verifier, config, tmp_path / "full", extract_answer=boxed)

    written = []

    def crash_after_three(row):
        written.append(row["index"])
        if len(written) == 3:  # in the middle of the second batch (indices 2, 3)
            raise Crash

    out = tmp_path / "resumed"
    with pytest.raises(Crash):
        run_search(problems, generator, verifier, config, out, extract_answer=boxed, on_row=crash_after_three)
    # The process also died while writing the next line: a torn partial line is left at the end.
    with open(out / "results.jsonl", "ab") as f:
        f.write(b'{"index": 3, "problem": "Conv')
    resumed = run_search(problems, generator, verifier, config, out, extract_answer=boxed)
    assert resumed.read_bytes() == reference.read_bytes()
    rows = read_results(reference)
    assert [r["index"] for r in rows] == [0, 1, 2, 3, 4]
    for row in rows:
        assert len(row["completions"]) == 4 and row["generated_tokens"] > 0 and row["verifier_tokens"] > 0
        assert [len(s) for s in row["scores"]] == [len(s) for s in row["steps"]]


def test_shards_merge_into_the_unsharded_results(tmp_path, real_data, components):
    generator, verifier = components
    data = str(real_data / "gsm8k" / "test.jsonl")
    config = config_for("beam_search")
    problems = load_problems(DatasetArguments(dataset_name=data, dataset_end=6))
    assert problems[0].answer == "18"  # the gold answer after '####'
    unsharded = run_search(problems, generator, verifier, config, tmp_path / "all", extract_answer=boxed)
    shard_dirs = []
    for start, end in [(0, 2), (2, 6)]:
        shard = load_problems(DatasetArguments(dataset_name=data, dataset_start=start, dataset_end=end))
        assert [p.index for p in shard] == list(range(start, end))
        shard_dirs.append(
            run_search(shard, generator, verifier, config, tmp_path / f"shard{start}", extract_answer=boxed).parent
        )
    merged = tmp_path / "merged" / "results.jsonl"
    merge_results(shard_dirs[::-1], merged)
    assert merged.read_bytes() == unsharded.read_bytes()


def test_merge_rejects_conflicting_shards(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text(json.dumps({"index": 0, "pred": "1"}) + "\n")
    b.write_text(json.dumps({"index": 0, "pred": "2"}) + "\n")
    with pytest.raises(ValueError, match="index 0"):
        merge_results([a, b], tmp_path / "m.jsonl")


def test_bad_dataset_columns_are_named(real_data):
    with pytest.raises(ValueError, match="no column 'solution_text'"):
        load_problems(
            DatasetArguments(dataset_name=str(real_data / "gsm8k" / "test.jsonl"), answer_column="solution_text")
        )


def test_recipe_runs_end_to_end_and_writes_metrics(tmp_path, tiny_dirs):
    from trl import TrlParser

    from recipes.run_search import main
    from search.generators import GeneratorArguments

    parser = TrlParser((SearchScriptArguments, SearchConfig, DatasetArguments, GeneratorArguments))
    out = tmp_path / "out"
    args = parser.parse_args_and_config(
        args=[
            "--config",
            "recipes/tiny/search_cpu.yaml",
            "--generator_model_name_or_path",
            str(tiny_dirs / "lm"),
            "--prm_path",
            str(tiny_dirs / "prm"),
            "--output_dir",
            str(out),
        ]
    )
    metrics = main(*args)
    rows = read_results(out / "results.jsonl")
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert all(len(r["completions"]) == 4 and r["method"] == "beam_search" for r in rows)
    assert set(metrics["weighted"]) and (out / "scaling.png").stat().st_size > 0
    saved = json.loads((out / "metrics.json").read_text())["weighted"]
    # Beam search: only the budget the search ran (a prefix of its score-sorted pool is not a smaller run).
    assert {int(k): v for k, v in saved.items()} == metrics["weighted"] and set(metrics["weighted"]) == {4}

    # The metrics are computed from results.jsonl: give the stored completions known answers, run the same command
    # again (every problem is done, so nothing is searched) and count by hand. Per problem the top-scored completion
    # gives the gold answer and the other three one wrong answer, so the top score, the weighted vote and the
    # majority disagree; the search's own scores (agg_strategy min) stay.
    for row in rows:
        top = max(range(4), key=lambda i: (row["agg_scores"][i], -i))
        row["right"] = [i == top for i in range(4)]
        row["completions"] = [f"So the answer is \\boxed{{{row['answer'] if ok else -1717}}}." for ok in row["right"]]
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    metrics = main(*args)
    scores = [row["agg_scores"] for row in rows]
    right_sum = [sum(s for s, ok in zip(row_scores, row["right"]) if ok) for row_scores, row in zip(scores, rows)]
    wrong_sum = [sum(s for s, ok in zip(row_scores, row["right"]) if not ok) for row_scores, row in zip(scores, rows)]
    expected = {
        "naive": {4: 100.0},  # the top-scored completion is the right one
        "weighted": {4: 100.0 * sum(r > w for r, w in zip(right_sum, wrong_sum)) / 3},
        "maj": {4: 0.0},  # three wrong against one right
        "pass": {4: 100.0},
    }
    assert {m: metrics[m] for m in expected} == expected
    assert metrics["no_answer_rate"] == 0.0 and [r["index"] for r in read_results(out / "results.jsonl")] == [0, 1, 2]


class FixedGenerator(Generator):
    """Every prompt gets the same completions, in order (a one-step solution each)."""

    def __init__(self, texts):
        self.texts = texts

    def format_prompt(self, problem, system_prompt=None):
        return f"Q: {problem}\nA:"

    def generate(self, prompts, config):
        return [[Completion(t, "eos", 1, 3) for t in self.texts[: config.n]] for _ in prompts]


class LookupVerifier(Verifier):
    step_separator = "\n\n"

    def __init__(self, scores):
        self.scores, self.tokens_processed = scores, 0

    def score(self, problems, solutions):
        return [[self.scores[s] for s in steps] for steps in solutions]


def test_pred_is_the_metrics_weighted_vote_over_equivalent_answers(tmp_path):
    # "0.5" and "\frac{1}{2}" are one answer (0.3 + 0.3 = 0.6) and beat "2" (0.5); a vote over raw strings picks "2".
    texts = ["So \\boxed{0.5}", "So \\boxed{\\frac{1}{2}}", "So \\boxed{2}"]
    verifier = LookupVerifier(dict(zip(texts, [0.3, 0.3, 0.5])))
    config = SearchConfig(method="best_of_n", n=3, beam_width=1, system_prompt=None)
    problems = [Problem(0, "half of one?", "\\frac{1}{2}")]
    run_search(problems, FixedGenerator(texts), verifier, config, tmp_path)
    [row] = read_results(tmp_path / "results.jsonl")
    assert row["pred"] == "0.5"  # the first answer of the winning group
    metrics = write_metrics(tmp_path, "last")
    assert metrics["weighted"][3] == 100.0 and metrics["naive"][3] == 0.0  # the same vote, graded
