"""The demo's report: markdown tables over seeds (mean and spread) and the scaling plot."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

METHOD_LABELS = {
    "weighted_bon": "Best-of-N, weighted vote (PRM)",
    "naive_bon": "Best-of-N, top score (PRM)",
    "beam_search": "Beam search (PRM), weighted",
    "dvts": "DVTS (PRM), weighted",
    "majority": "Majority vote (no PRM)",
    "single": "Single sample",
    "pass": "pass@N (any sample right)",
}


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def fmt(values: Sequence[float], scale: float = 1.0, digits: int = 1) -> str:
    mean, std = mean_std([v * scale for v in values])
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def curves(seed_result: dict[str, Any]) -> dict[str, dict[int, float]]:
    """Accuracy (%) by N for each method of one seed, from its search metrics."""
    bon = seed_result["search"]["best_of_n"]
    out = {
        "weighted_bon": bon["weighted"],
        "naive_bon": bon["naive"],
        "majority": bon["maj"],
        "pass": bon["pass"],
        "single": {n: seed_result["policy"]["single"] * 100 for n in bon["maj"]},
    }
    for method in ("beam_search", "dvts"):
        out[method] = {n: m["weighted"][n] for n, m in seed_result["search"][method].items()}
    return {k: {int(n): v for n, v in c.items()} for k, c in out.items()}


def token_curves(seed_result: dict[str, Any]) -> dict[str, dict[int, tuple[float, float]]]:
    """For each method, ``{N: (mean generated tokens per problem, accuracy %)}``."""
    bon = seed_result["search"]["best_of_n"]
    tokens = {int(n): t for n, t in bon.get("generated_tokens", {}).items()}
    by_n = curves(seed_result)
    out: dict[str, dict[int, tuple[float, float]]] = {}
    for key in ("weighted_bon", "majority"):
        out[key] = {n: (tokens[n], acc) for n, acc in by_n[key].items() if n in tokens}
    for method in ("beam_search", "dvts"):
        out[method] = {
            int(n): (m["mean_generated_tokens_per_problem"], m["weighted"][int(n)])
            for n, m in seed_result["search"][method].items()
            if "mean_generated_tokens_per_problem" in m
        }
    return out


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def markdown_report(
    results: Sequence[dict[str, Any]], settings: dict[str, Any], summary: dict[str, Any] | None = None
) -> str:
    """The demo's report: settings, policy and labels, PRM verification, search at the largest N, paired gains
    over majority vote (from ``summary``, see :mod:`.summary`), accuracy by N, stage timings and a closing note
    drawn from the figures."""
    from arith_demo.summary import gains_markdown

    final_table, verdicts = _search_section(results, settings["n"])
    lines = [
        *_header(results, settings),
        *_policy_section(results, settings["n"]),
        *_verification_section(results),
        *final_table,
        *(gains_markdown(summary) if summary else []),
        *_by_n_section(results),
        *_timings_section(settings["timings"]),
        "",
        "## Closing note",
        "",
        closing_note(verdicts, results),
    ]
    return "\n".join(lines) + "\n"


def _header(results: Sequence[dict[str, Any]], settings: dict[str, Any]) -> list[str]:
    return [
        "# prmkit demo: the whole loop on the arithmetic world",
        "",
        f"Seeds: {[r['seed'] for r in results]}. Every figure is mean ± standard deviation over the seeds, on held-out "
        f"problems ({settings['num_search_problems']} per seed for search, {settings['num_eval_solutions']} sampled "
        "solutions per seed for ProcessBench-style evaluation). Policy: "
        f"`{settings['policy']}`; problems: {settings['difficulty']}; sampling temperature {settings['temperature']}.",
        "",
    ]


def _policy_section(results: Sequence[dict[str, Any]], n_max: int) -> list[str]:
    def over_seeds(get, scale: float = 100, digits: int = 1) -> str:
        return fmt([get(r) for r in results], scale, digits)

    kinds = sorted(results[0]["data"]["error_kinds"].items(), key=lambda kv: -kv[1])
    return [
        "## Policy and labels",
        "",
        _row(["measure", "value"]),
        _row(["---", "---"]),
        _row(["single-sample accuracy (%)", over_seeds(lambda r: r["policy"]["single"])]),
        _row(["step accuracy (%)", over_seeds(lambda r: r["policy"]["step_accuracy"])]),
        _row([f"majority vote @{n_max} (%)", over_seeds(lambda r: r["search"]["best_of_n"]["maj"][n_max], 1)]),
        _row([f"pass@{n_max} (%)", over_seeds(lambda r: r["search"]["best_of_n"]["pass"][n_max], 1)]),
        _row(
            [
                "PRM training solutions (policy samples + synthetic with wrong lines)",
                over_seeds(lambda r: r["data"]["train_rows"], 1, 0),
            ]
        ),
        _row(["MC labels vs exact: step agreement (%)", over_seeds(lambda r: r["mc"]["step_agreement"])]),
        _row(
            ["MC labels vs exact: first-error agreement (%)", over_seeds(lambda r: r["mc"]["first_error_agreement"])]
        ),
        _row(["MC labels: recall of wrong steps (%)", over_seeds(lambda r: r["mc"]["recall_wrong"])]),
        "",
        "First errors of policy samples, by kind (seed 0): " + ", ".join(f"{k} {v}" for k, v in kinds),
        "",
    ]


def _verification_section(results: Sequence[dict[str, Any]]) -> list[str]:
    def prm(get, scale: float = 1.0, digits: int = 1) -> str:
        return fmt([get(r["prm"]) for r in results], scale, digits)

    return [
        "## Does the PRM verify?",
        "",
        _row(["measure", "value", "chance"]),
        _row(["---", "---", "---"]),
        _row(["ProcessBench-style F1 (%)", prm(lambda p: p["f1"]), "-"]),
        _row(["  accuracy on erroneous solutions (%)", prm(lambda p: p["error_acc"]), "-"]),
        _row(["  accuracy on correct solutions (%)", prm(lambda p: p["correct_acc"]), "-"]),
        _row(
            [
                "step AUROC (held-out policy samples; a prefix scores its worst line)",
                prm(lambda p: p["step_auroc"], 1, 3),
                "0.5",
            ]
        ),
        _row(["within-problem ranking: right above wrong sample (%)", prm(lambda p: p["ranking"], 100), "50"]),
        _row(
            [
                "  the same pairs ranked by the exact line checker (%; a right answer can follow a wrong line)",
                prm(lambda p: p["ranking_ceiling"], 100),
                "50",
            ]
        ),
        _row(
            [
                "  right = no wrong line (ProcessBench's correct solution) above wrong (%)",
                prm(lambda p: p["ranking_process"], 100),
                "50",
            ]
        ),
        _row(
            [
                "same prefix, right vs corrupted line: right scored higher (%)",
                prm(lambda p: p["line"]["pair_accuracy"], 100),
                "50",
            ]
        ),
        _row(["  mean score of the right line", prm(lambda p: p["line"]["mean_right"], 1, 3), "-"]),
        _row(["  mean score of the corrupted line", prm(lambda p: p["line"]["mean_corrupted"], 1, 3), "-"]),
        "",
    ]


def _search_section(results: Sequence[dict[str, Any]], n_max: int) -> tuple[list[str], dict[str, float]]:
    """The table of every method at N = ``n_max``, and each method's mean gain over majority vote."""
    lines = [
        f"## Search at N = {n_max} (accuracy %, held-out problems)",
        "",
        _row(["method", "accuracy", f"vs majority@{n_max}"]),
        _row(["---", "---", "---"]),
    ]
    final = {key: [curves(r)[key].get(n_max, float("nan")) for r in results] for key in METHOD_LABELS}
    majority = mean_std(final["majority"])[0]
    verdicts = {}
    for key, label in METHOD_LABELS.items():
        verdicts[key] = mean_std(final[key])[0] - majority
        verdict = "-" if key in ("majority", "pass", "single") else f"{verdicts[key]:+.1f}"
        lines.append(_row([label, fmt(final[key]), verdict]))
    return lines, verdicts


def _by_n_section(results: Sequence[dict[str, Any]]) -> list[str]:
    ns = sorted({n for r in results for c in curves(r).values() for n in c})
    lines = ["", "## Accuracy by N (%)", "", _row(["method", *[f"N={n}" for n in ns]]), _row(["---"] * (len(ns) + 1))]
    for key, label in METHOD_LABELS.items():
        cells = []
        for n in ns:
            values = [curves(r)[key][n] for r in results if n in curves(r)[key]]
            cells.append(fmt(values) if values else "")
        lines.append(_row([label, *cells]))
    return lines


def _timings_section(timings: dict[str, tuple[float, float]]) -> list[str]:
    lines = ["", "## Stage timings (seconds)", "", _row(["stage", "wall", "CPU (process)"]), _row(["---"] * 3)]
    lines += [_row([stage, f"{wall:.1f}", f"{cpu:.1f}"]) for stage, (wall, cpu) in timings.items()]
    return lines


def closing_note(verdicts: dict[str, float], results: Sequence[dict[str, Any]]) -> str:
    prm_methods = ["weighted_bon", "beam_search", "dvts", "naive_bon"]
    beat = [METHOD_LABELS[k] for k in prm_methods if verdicts[k] > 0]
    lost = [METHOD_LABELS[k] for k in prm_methods if verdicts[k] <= 0]
    line = statistics.fmean(r["prm"]["line"]["pair_accuracy"] for r in results)
    ranking = mean_std([r["prm"]["ranking"] for r in results])[0]
    auroc = mean_std([r["prm"]["step_auroc"] for r in results])[0]
    text = [
        f"The PRM prefers the right line over a corrupted version of it after the same prefix in {100 * line:.0f}% "
        f"of pairs, and ranks a right sample above a wrong sample of the same problem in {100 * ranking:.0f}% of "
        f"pairs (chance: 50% for both), while its global step AUROC is {auroc:.2f}."
    ]
    if ranking < 0.65:
        text.append(
            "So it verifies only weakly: most of what a global AUROC rewards is knowing which problems and which "
            "positions are hard, which does not help choose among samples of one problem. Learning to check a "
            "line's arithmetic needs more PRM training than this demo's budget gives it."
        )
    if beat:
        text.append("Above majority vote at the largest N: " + ", ".join(beat) + ".")
    if lost:
        text.append(
            "Not above majority vote: "
            + ", ".join(lost)
            + ". Majority vote is a strong baseline here: the policy's mistakes scatter over many different wrong "
            "answers while right samples agree, so a verifier must be better than that agreement to add anything; "
            "a method that trusts one top-scored solution, or prunes partial solutions on step scores (beam search, "
            "DVTS), loses whenever the PRM misjudges a line, and beam search also loses diversity."
        )
    return " ".join(text)


def scaling_plot(results: Sequence[dict[str, Any]], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_n, ax_t) = plt.subplots(1, 2, figsize=(12, 4.5))
    styles = {
        "weighted_bon": ("tab:blue", "-o"),
        "naive_bon": ("tab:cyan", "-s"),
        "beam_search": ("tab:green", "-^"),
        "dvts": ("tab:purple", "-v"),
        "majority": ("tab:orange", "--o"),
        "single": ("tab:gray", ":"),
        "pass": ("tab:red", ":x"),
    }
    for key, (color, style) in styles.items():
        per_seed = [curves(r)[key] for r in results]
        ns = sorted(set.intersection(*(set(c) for c in per_seed)))
        means = [statistics.fmean(c[n] for c in per_seed) for n in ns]
        ax_n.plot(ns, means, style, color=color, label=METHOD_LABELS[key])
    for key in ("weighted_bon", "beam_search", "dvts", "majority"):
        color, style = styles[key]
        per_seed = [token_curves(r)[key] for r in results]
        ns = sorted(set.intersection(*(set(c) for c in per_seed)))
        if ns:
            xs = [statistics.fmean(c[n][0] for c in per_seed) for n in ns]
            ys = [statistics.fmean(c[n][1] for c in per_seed) for n in ns]
            ax_t.plot(xs, ys, style, color=color, label=METHOD_LABELS[key])
    ax_n.set_xscale("log", base=2)
    ax_n.set_xlabel("N (solutions per problem)")
    ax_n.set_ylabel("accuracy (%)")
    ax_n.set_title("Accuracy vs N (mean over seeds)")
    ax_t.set_xscale("log")
    ax_t.set_xlabel("generated tokens per problem")
    ax_t.set_title("Accuracy vs generated tokens (mean over seeds)")
    for ax in (ax_n, ax_t):
        ax.grid(alpha=0.3)
    ax_n.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
