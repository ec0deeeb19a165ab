"""The report of ``train_throughput.py``: per-run summaries over repeats, the comparison table, the loss curves
(printed and plotted) and the same-order check."""

from __future__ import annotations

import os
from pathlib import Path
from statistics import fmean as mean
from statistics import median_high as median

HELDOUT_KEYS = ("heldout_loss", "heldout_step_accuracy", "heldout_f1")


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        ax.plot(range(1, len(r["losses"]) + 1), r["losses"], label=f"{r['run']} ({r['process_wall_s']:.0f} s)")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title("PRM training: prmkit vs TRL 1.10.0")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def summarize(name: str, trials: list[dict]) -> dict:
    """The median run by whole-process wall time, with the medians of the timings across repeats and the means of
    the losses (repeat k of every run uses seed + k, so the spread over repeats is the seed-to-seed variation)."""
    result = dict(sorted(trials, key=lambda r: r["process_wall_s"])[len(trials) // 2])
    for key in ("process_cpu_s", "samples_per_second", "samples_per_cpu_second", "setup_and_tokenize_s"):
        result[key] = median([r[key] for r in trials])
    result["all_process_wall_s"] = [round(r["process_wall_s"], 2) for r in trials]
    result["all_process_cpu_s"] = [round(r["process_cpu_s"], 2) for r in trials]
    result["peak_memory_mib"] = max(r["peak_memory_mib"] for r in trials)
    # The curves printed and plotted are those of the first seed, so that runs drawing the same batches line up.
    result["losses"], result["seed"] = trials[0]["losses"], trials[0]["seed"]
    result["mean_loss"] = mean([mean(r["losses"]) for r in trials])
    result["mean_loss_last_quarter"] = mean([mean(r["losses"][-max(1, len(r["losses"]) // 4) :]) for r in trials])
    for key in HELDOUT_KEYS:
        result[f"all_{key}"] = [r[key] for r in trials]
        result[key] = mean(result[f"all_{key}"])
    return result


def print_table(args, results: list[dict], load: tuple[float, float]) -> None:
    baseline = next((r for r in results if r["run"] == "trl"), None)
    rows, heldout = results[0].get("rows", "?"), results[0].get("heldout_rows", "?")
    data = (
        f"{rows} ProcessBench solutions ({'all splits' if args.split == 'all' else args.split}; {heldout} more held "
        "out)"
    )
    print(
        f"\n{args.steps} steps, batch {args.batch_size}, {data}, model hidden {args.hidden_size} x {args.layers} "
        f"layers, {args.threads} thread(s); {args.repeats} interleaved repeats (seeds {args.seed}.."
        f"{args.seed + args.repeats - 1}): median times, mean losses; load average {load[0]:.1f} before, "
        f"{load[1]:.1f} after, on {os.cpu_count()} CPUs"
    )
    print(
        f"{'run':<22}{'process s':>10}{'vs TRL':>8}{'CPU s':>8}{'vs TRL':>8}{'samples/s':>10}"
        f"{'setup s':>9}{'peak MiB':>9}{'train loss':>11}{'last 1/4':>9}{'held-out loss':>14}{'step acc':>9}{'F1':>6}"
    )
    for r in results:
        ratio = baseline["process_wall_s"] / r["process_wall_s"] if baseline else float("nan")
        cpu_ratio = baseline["process_cpu_s"] / r["process_cpu_s"] if baseline else float("nan")
        r["ratio_vs_trl"], r["cpu_ratio_vs_trl"] = ratio, cpu_ratio
        print(
            f"{r['run']:<22}{r['process_wall_s']:>10.1f}{ratio:>7.2f}x{r['process_cpu_s']:>8.1f}{cpu_ratio:>7.2f}x"
            f"{r['samples_per_second']:>10.2f}{r['setup_and_tokenize_s']:>9.1f}{r['peak_memory_mib']:>9.0f}"
            f"{r['mean_loss']:>11.4f}{r['mean_loss_last_quarter']:>9.4f}{r['heldout_loss']:>14.4f}"
            f"{r['heldout_step_accuracy']:>9.3f}{r['heldout_f1']:>6.3f}"
        )
    print(
        "(process s: whole worker process less the held-out scoring, wall clock; vs TRL: TRL's time / this run's "
        "time, higher is faster; train loss: as each trainer logs it, over its own batches; held-out loss: the "
        "same step cross-entropy on the held-out rows, every step counted once)"
    )
    if baseline:
        for r in results:
            if r is not baseline:
                diffs = [a - b for a, b in zip(r["all_heldout_loss"], baseline["all_heldout_loss"])]
                print(
                    f"held-out loss {r['run']} - trl, per seed: {' '.join(f'{d:+.4f}' for d in diffs)} "
                    f"(mean {mean(diffs):+.4f}); trl's own seed-to-seed range "
                    f"{max(baseline['all_heldout_loss']) - min(baseline['all_heldout_loss']):.4f}"
                )


def check_same_order(trials: dict[str, list[dict]]) -> None:
    """TRL and prmkit with group_by_length=False draw the same batches per seed: their loss curves must agree."""
    if not trials.get("trl") or not trials.get("prmkit-trl-order"):
        return
    gap = max(
        abs(a - b) for t, o in zip(trials["trl"], trials["prmkit-trl-order"]) for a, b in zip(t["losses"], o["losses"])
    )
    print(f"max |loss(trl) - loss(prmkit-trl-order)| per step, same seed and data order: {gap:.2e}")


def print_loss_curves(args, results: list[dict]) -> None:
    every = max(1, args.steps // 20)
    print(f"loss curves, seed {args.seed} (every {every} steps; all steps in the JSON):")
    for r in results:
        print(f"  {r['run']:<22}" + " ".join(f"{x:.3f}" for x in r["losses"][::every]))
