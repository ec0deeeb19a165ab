"""Plots of evaluation results. Matplotlib is imported inside each function (Agg backend, no display needed)."""

from __future__ import annotations


def plot_f1_vs_threshold(sweeps: dict[str, dict[str, float]], path: str) -> str:
    """ProcessBench F1 against the decision threshold, one line per split plus their unweighted average."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for split, f1_by_threshold in sweeps.items():
        thresholds = [float(t) for t in f1_by_threshold]
        ax.plot(thresholds, list(f1_by_threshold.values()), marker="o", markersize=3, label=split)
    if len(sweeps) > 1:
        keys = list(next(iter(sweeps.values())))
        average = [sum(s[k] for s in sweeps.values()) / len(sweeps) for k in keys]
        ax.plot([float(k) for k in keys], average, color="black", linewidth=2, label="average")
    ax.set_xlabel("threshold (step judged wrong when P(correct) < threshold)")
    ax.set_ylabel("F1 (%)")
    ax.set_title("ProcessBench F1 vs threshold")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    _save(fig, path)
    return path


def _save(fig, path: str, dpi: int = 120) -> None:
    """Write the figure atomically (a failed run leaves no half-written image) and free it."""
    import matplotlib.pyplot as plt

    from prm.atomic import atomic_write

    try:
        with atomic_write(path, "wb") as f:
            fig.savefig(f, format="png", dpi=dpi)
    finally:
        plt.close(fig)


def plot_pool_scaling(metrics: dict, path: str, title: str | None = None) -> str:
    """Accuracy of naive/weighted/maj/pass against the pool size n (log2 axis), and against the mean generated
    tokens per problem when ``metrics`` has ``generated_tokens`` (the output of :func:`eval.pool.pool_metrics`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [m for m in ("naive", "weighted", "maj", "pass") if metrics.get(m)]
    tokens = metrics.get("generated_tokens")
    fig, axes = plt.subplots(1, 2 if tokens else 1, figsize=(12 if tokens else 6.5, 4.5), squeeze=False)
    for name in names:
        ns = sorted(int(n) for n in metrics[name])
        acc = [metrics[name][n] if n in metrics[name] else metrics[name][str(n)] for n in ns]
        axes[0][0].plot(ns, acc, marker="o", label=f"{name}@n")
        if tokens:
            tok = [tokens[n] if n in tokens else tokens[str(n)] for n in ns]
            axes[0][1].plot(tok, acc, marker="o", label=f"{name}@n")
    axes[0][0].set_xscale("log", base=2)
    all_ns = sorted({int(n) for name in names for n in metrics[name]})
    axes[0][0].set_xticks(all_ns, [str(n) for n in all_ns])
    only_run = len(all_ns) == 1 and any(m in metrics.get("methods", ()) for m in ("beam_search", "dvts"))
    axes[0][0].set_xlabel("n = N, the budget the tree search ran" if only_run else "n (solutions per problem)")
    if tokens:
        axes[0][1].set_xscale("log")
        axes[0][1].set_xlabel("generated tokens per problem (mean)")
    for ax in axes[0]:
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title or f"Accuracy vs compute ({metrics.get('num_problems', '?')} problems)")
    fig.tight_layout()
    _save(fig, path)
    return path


AXIS_LABELS = {
    "n": "N (samples or beams per problem)",
    "tokens": "generated tokens per problem (mean)",
    "flops": "FLOPs per problem (mean, 2 x params x tokens)",
}


def _compute_optimal_panel(ax, result: dict, axis: str) -> None:
    """One budget axis: every single method, the compute-optimal curves and the reference lines."""
    methods: dict[str, list[tuple[float, float]]] = {}
    for s in result["strategies"]:
        methods.setdefault(f"{s['label']} {s['vote']}", []).append((s["cost"][axis], s["accuracy"]))
    for name, points in methods.items():
        points.sort()
        ax.plot(*zip(*points), marker=".", linewidth=1, alpha=0.6, label=name)
    rows = result["axes"][axis]["budgets"]
    budgets = [r["budget"] for r in rows]
    styles = {"predicted": ("black", "-"), "oracle": ("tab:red", "-")}
    for kind, (color, style) in styles.items():
        if kind not in rows[0]:
            continue
        cross = [r[kind]["cross_fitted"] for r in rows]
        ax.plot(
            budgets,
            [c["accuracy"] for c in cross],
            color=color,
            linestyle=style,
            linewidth=2.2,
            drawstyle="steps-post",
            label=f"compute-optimal, {kind} difficulty (cross-fitted)",
        )
        if kind == "predicted":  # one band (the deployable curve's 95% interval) keeps the figure readable
            lows, highs = [c["ci95"][0] for c in cross], [c["ci95"][1] for c in cross]
            ax.fill_between(budgets, lows, highs, color=color, alpha=0.1, step="post", label="95% interval")
        ax.plot(
            budgets,
            [r[kind]["in_sample_optimistic"]["accuracy"] for r in rows],
            color=color,
            linestyle=":",
            linewidth=1.4,
            drawstyle="steps-post",
            label=f"compute-optimal, {kind} (in-sample, optimistic)",
        )
    for i, ref in enumerate(result.get("references", [])):
        color = f"C{(i + 5) % 10}"
        ax.axhline(ref["accuracy"], color=color, linestyle="--", linewidth=1.2, label=f"{ref['label']}: {ref['kind']}")
        if axis == "flops":
            ax.plot([ref["flops"]], [ref["accuracy"]], marker="*", markersize=12, color=color)
    ax.set_xscale("log", base=2 if axis == "n" else 10)
    ax.set_xlabel(AXIS_LABELS[axis])
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)


def plot_compute_optimal(result: dict, path: str, title: str | None = None) -> str:
    """Accuracy against N, generated tokens and FLOPs per problem: every method (one line per method and vote), the
    compute-optimal curves (cross-fitted, the predicted one with its 95% interval; in-sample dotted) and other
    models' reference lines (single sample, majority; stars on the FLOPs axis at their cost). ``result`` is
    ``compute_optimal.json``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(20, 6))
    for ax, axis in zip(axes, ("n", "tokens", "flops")):
        _compute_optimal_panel(ax, result, axis)
    handles, labels = axes[2].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(title or f"Compute-optimal scaling ({result['num_problems']} problems, {result['num_bins']} bins)")
    fig.tight_layout(rect=(0, 0.08 + 0.025 * (len(labels) // 4), 1, 1))
    _save(fig, path, dpi=110)
    return path
