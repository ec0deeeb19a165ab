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
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
