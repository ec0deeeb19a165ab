"""ProcessBench: find the first wrong step of 3,400 solutions, scored per split as the benchmark does.

Protocols for turning step scores into a prediction (index of the first wrong step, or -1):
- ``threshold=None`` (default for token-classification PRMs): a step is judged wrong when class 0 wins the
  argmax of the two logits, exactly as the benchmark's script for TRL-trained PRMs. Verifiers report the
  log-odds (``StepScores.margins``); ``margin > 0`` is the argmax decision without any rounding in between.
- ``threshold=T``: the first step whose P(correct) < T (the protocol for Qwen2.5-Math-PRM, T = 0.5).
Solutions longer than the model context are scored on the steps that fit; they are flagged and counted.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import Any

from prm.atomic import atomic_write, write_text
from prm.first_error import first_error_from_scores, first_error_index, processbench_scores

logger = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("gsm8k", "math", "olympiadbench", "omnimath")
DEFAULT_DATASET = "Qwen/ProcessBench"
# (solutions with an error, fully correct solutions) per split, as published.
EXPECTED_SIZES = {"gsm8k": (207, 193), "math": (594, 406), "olympiadbench": (661, 339), "omnimath": (759, 241)}
SWEEP_THRESHOLDS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))
WEIGHTED_F1_NOTE = "size-weighted mean of the per-split F1 (not the unweighted average that papers report)"


class ProcessBenchFormatError(ValueError):
    """A ProcessBench row that cannot be evaluated; the message names the split, row and field."""


def validate_processbench_rows(rows: Sequence[dict[str, Any]], split: str, source: str | None = None) -> None:
    """Every row has a ``problem`` string, a non-empty list of string ``steps`` and a ``label`` in [-1, steps).

    The error names ``source`` (the file, or the hub dataset), the split, the row (0-based) and the field.
    """
    for i, row in enumerate(rows):
        where = f"{source + ': ' if source else ''}ProcessBench split {split!r}, row {i} (id {row.get('id', '?')!r})"
        if not isinstance(row.get("problem"), str):
            raise ProcessBenchFormatError(f"{where}: field 'problem' must be a string")
        steps = row.get("steps")
        if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
            raise ProcessBenchFormatError(f"{where}: field 'steps' must be a non-empty list of strings")
        label = row.get("label")
        if not isinstance(label, int) or isinstance(label, bool) or not -1 <= label < len(steps):
            raise ProcessBenchFormatError(
                f"{where}: field 'label' must be -1 or a step index < {len(steps)}, got {label!r}"
            )


def load_processbench_split(
    split: str, data_dir: str | None = None, dataset_name: str = DEFAULT_DATASET, limit: int | None = None
) -> list[dict[str, Any]]:
    """One split as a list of rows, from the hub (``dataset_name``) or from ``<data_dir>/<split>.json``."""
    from prm.data import load_raw_dataset

    # Local data may hold other splits in the same layout (e.g. the arithmetic demo's held-out split).
    if split not in SPLITS and data_dir is None:
        raise ValueError(f"Unknown ProcessBench split {split!r}; choose from {', '.join(SPLITS)}")
    if data_dir is not None and not os.path.isdir(data_dir):
        raise FileNotFoundError(f"--data_dir {data_dir} is not a directory")
    dataset = load_raw_dataset(
        data_dir or dataset_name,
        split=split,
        check_rows=lambda rows, path: validate_processbench_rows(rows, split, path),
    )
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    rows = dataset.to_list()
    source = _split_file(data_dir, split) if data_dir is not None else dataset_name
    validate_processbench_rows(rows, split, source)
    if limit is None and split in EXPECTED_SIZES:
        sizes = (sum(r["label"] != -1 for r in rows), sum(r["label"] == -1 for r in rows))
        if sizes != EXPECTED_SIZES[split]:
            logger.warning(
                "%s: %d erroneous / %d correct solutions, expected %d / %d", split, *sizes, *EXPECTED_SIZES[split]
            )
    return rows


def _split_file(data_dir: str, split: str) -> str:
    """The file of ``split`` in a local ProcessBench-layout folder (what the error messages name)."""
    for name in sorted(os.listdir(data_dir)):
        if os.path.splitext(name)[0] == split:
            return os.path.join(data_dir, name)
    return data_dir


def load_processbench(
    splits: Sequence[str], data_dir: str | None = None, dataset_name: str = DEFAULT_DATASET, limit: int | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Every requested split, checked row by row (see :func:`load_processbench_split`)."""
    return {split: load_processbench_split(split, data_dir, dataset_name, limit) for split in splits}


def predict_first_error(margins: Sequence[float], scores: Sequence[float], threshold: float | None = None) -> int:
    """The predicted first wrong step: argmax protocol when ``threshold`` is None, else the first score < T."""
    if threshold is None:
        return first_error_index([m > 0 for m in margins])
    return first_error_from_scores(scores, threshold)


def sweep_f1(
    labels: Sequence[int], step_scores: Sequence[Sequence[float]], thresholds=SWEEP_THRESHOLDS
) -> dict[str, float]:
    """F1 for each threshold (keys are the thresholds formatted "0.05", ... so they survive JSON)."""
    return {
        f"{t:.2f}": processbench_scores(labels, [first_error_from_scores(s, t) for s in step_scores])["f1"]
        for t in thresholds
    }


def summarize(per_split: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Per-split metrics plus the unweighted average F1 (the reported number) and a size-weighted one."""
    f1s = [m["f1"] for m in per_split.values()]
    sizes = [m["num_erroneous"] + m["num_correct"] for m in per_split.values()]
    out: dict[str, Any] = dict(per_split)
    out["average_f1"] = sum(f1s) / len(f1s) if f1s else 0.0
    out["average_over"] = list(per_split)
    out["weighted_f1"] = sum(f * n for f, n in zip(f1s, sizes)) / sum(sizes) if sum(sizes) else 0.0
    out["weighted_f1_note"] = WEIGHTED_F1_NOTE
    return out


def format_table(results: dict[str, Any]) -> str:
    splits = [s for s in results.get("average_over", []) if s in results]
    lines = [f"{'split':<15}{'error acc':>10}{'correct acc':>13}{'F1':>8}{'n':>7}{'truncated':>11}"]
    for s in splits:
        m = results[s]
        n = m["num_erroneous"] + m["num_correct"]
        lines.append(
            f"{s:<15}{m['error_acc']:>10.1f}{m['correct_acc']:>13.1f}{m['f1']:>8.1f}{n:>7}{m.get('num_truncated', 0):>11}"
        )
    lines.append(f"{'average F1':<38}{results['average_f1']:>8.1f}   (unweighted mean over {len(splits)} splits)")
    lines.append(f"{'weighted F1':<38}{results['weighted_f1']:>8.1f}   (size-weighted)")
    return "\n".join(lines)


def _score_rows(verifier, rows: list[dict[str, Any]], split: str, show_progress: bool) -> list[dict[str, Any]]:
    previous = getattr(verifier, "show_progress", False), getattr(verifier, "progress_desc", None)
    verifier.show_progress, verifier.progress_desc = show_progress, f"ProcessBench {split}"
    try:
        if hasattr(verifier, "score_with_info"):
            infos = verifier.score_with_info([r["problem"] for r in rows], [r["steps"] for r in rows])
            return [{"scores": i.scores, "margins": i.margins, "truncated": i.truncated} for i in infos]
        # Any other Verifier: scores only, so the argmax protocol reads them as P > 0.5.
        scores = verifier.score([r["problem"] for r in rows], [r["steps"] for r in rows])
        return [
            {"scores": s, "margins": [p - 0.5 for p in s], "truncated": len(s) < len(r["steps"])}
            for s, r in zip(scores, rows)
        ]
    finally:
        verifier.show_progress, verifier.progress_desc = previous


def distributed_state():
    """accelerate's process state. On a machine with no GPU (or other accelerator) the processes started by
    ``accelerate launch --num_processes N`` join over gloo only when the state is created for the CPU; otherwise
    each of them would score every row alone and all would write the same files."""
    import torch
    from accelerate import PartialState

    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6
    has_accelerator = accelerator.is_available() if accelerator is not None else torch.cuda.is_available()
    return PartialState(cpu=not has_accelerator)


def run_processbench(
    verifier,
    output_dir: str | None,
    splits: Sequence[str] = SPLITS,
    data_dir: str | None = None,
    dataset_name: str = DEFAULT_DATASET,
    threshold: float | None = None,
    sweep: bool = False,
    limit: int | None = None,
    settings: dict[str, Any] | None = None,
    sweep_selection: str = "gsm8k",
    rows_by_split: dict[str, list[dict[str, Any]]] | None = None,
) -> dict[str, Any] | None:
    """Evaluate ``verifier`` on ProcessBench and write ``<output_dir>/processbench/``.

    With ``sweep``, F1 is also computed per threshold and a threshold is chosen by :func:`select_threshold`
    (``sweep_selection``: a split to tune on, or "cross-fit"); never on the same splits it is then reported on,
    except the tuning split itself, which is reported but left out of ``average_f1_held_out``.

    Under ``accelerate launch`` every process scores its share of each split and the main process gathers,
    computes the metrics and writes the outputs; it returns the results there and None elsewhere.
    """
    state = distributed_state()
    if rows_by_split is None:  # already loaded (and checked) by a caller that reads the data before the model
        rows_by_split = load_processbench(splits, data_dir, dataset_name, limit)
    out_dir = os.path.join(output_dir, "processbench") if output_dir else None
    if out_dir and state.is_main_process:
        os.makedirs(out_dir, exist_ok=True)
    per_split, sweeps = {}, {}
    for split, rows in rows_by_split.items():
        scored = _score_split_distributed(verifier, rows, split, state)
        if scored is None:  # not the main process
            continue
        records = _records(rows, scored, threshold)
        per_split[split] = _split_metrics(split, records)
        if sweep:
            sweeps[split] = sweep_f1([r["label"] for r in records], [r["step_scores"] for r in records])
        if out_dir:
            with atomic_write(os.path.join(out_dir, f"{split}.jsonl")) as f:
                f.writelines(json.dumps(r) + "\n" for r in records)
    if not state.is_main_process:
        return None
    results = summarize(per_split)
    if sweep:
        results["sweep"] = sweeps
        results["threshold_selection"] = select_threshold(sweeps, sweep_selection)
    results["settings"] = {
        "protocol": "argmax" if threshold is None else f"first step with score < {threshold}",
        "threshold": threshold,
        "splits": list(splits),
        "data": data_dir or dataset_name,
        "limit": limit,
        "num_processes": state.num_processes,
        "step_separator": getattr(verifier, "step_separator", None),
        **(settings or {}),
    }
    if out_dir:
        _write_results(out_dir, results, sweeps if sweep else None)
    return results


def _write_results(out_dir: str, results: dict[str, Any], sweeps: dict[str, dict[str, float]] | None) -> None:
    """``results.json``, and the F1-vs-threshold plot when a sweep ran."""
    write_text(os.path.join(out_dir, "results.json"), json.dumps(results, indent=2))
    if sweeps is not None:
        from eval.plots import plot_f1_vs_threshold

        plot_f1_vs_threshold(sweeps, os.path.join(out_dir, "f1_vs_threshold.png"))


def _score_split_distributed(verifier, rows: list[dict[str, Any]], split: str, state) -> list[dict] | None:
    """Each process scores rows ``process_index, process_index + num_processes, ...``; the main process gets
    every row's scores back in dataset order, the others None."""
    from accelerate.utils import gather_object

    shard = list(range(state.process_index, len(rows), state.num_processes))
    scored = _score_rows(verifier, [rows[i] for i in shard], split, state.is_main_process)
    pairs = list(zip(shard, scored))
    if state.num_processes > 1:
        pairs = gather_object(pairs)
    if not state.is_main_process:
        return None
    by_index = dict(pairs)
    return [by_index[i] for i in range(len(rows))]


def _records(rows: list[dict[str, Any]], scored: list[dict[str, Any]], threshold: float | None) -> list[dict]:
    """One record per solution: label, prediction, step scores (the lines of ``<split>.jsonl``)."""
    records = []
    for i, (row, s) in enumerate(zip(rows, scored)):
        prediction = predict_first_error(s["margins"], s["scores"], threshold)
        records.append(
            {
                "id": row.get("id", i),
                "label": row["label"],
                "prediction": prediction,
                "match": prediction == row["label"],
                "step_scores": s["scores"],
                "num_steps": len(row["steps"]),
                "truncated": s["truncated"],
            }
        )
    return records


def _split_metrics(split: str, records: list[dict[str, Any]]) -> dict[str, float]:
    metrics = processbench_scores([r["label"] for r in records], [r["prediction"] for r in records])
    metrics["num_truncated"] = sum(r["truncated"] for r in records)
    if metrics["num_truncated"]:
        logger.warning(
            "%s: %d solutions exceed the model context; only their leading steps were scored",
            split,
            metrics["num_truncated"],
        )
    logger.info(
        "%s: error acc %.1f, correct acc %.1f, F1 %.1f",
        split,
        metrics["error_acc"],
        metrics["correct_acc"],
        metrics["f1"],
    )
    return metrics


def select_threshold(sweeps: dict[str, dict[str, float]], selection: str = "gsm8k") -> dict[str, Any]:
    """The threshold chosen from a sweep without picking it on the splits it is judged on.

    ``selection`` is a split name (the benchmark's authors tuned on gsm8k): the threshold with the best F1 on that
    split, then every split's F1 at it; ``average_f1_held_out`` leaves the tuning split out. ``"cross-fit"``: each
    split gets the threshold with the best average F1 over the other splits (leave one split out).
    Ties go to the lowest threshold.
    """
    if not sweeps:
        return {}
    keys = list(next(iter(sweeps.values())))

    def best(splits: list[str]) -> str:
        return max(keys, key=lambda k: (sum(sweeps[s][k] for s in splits) / len(splits), -float(k)))

    if selection == "cross-fit":
        if len(sweeps) < 2:
            raise ValueError("cross-fit threshold selection needs at least two splits")
        chosen = {s: best([o for o in sweeps if o != s]) for s in sweeps}
        held_out = list(sweeps)
        rule = "cross-fit: each split at the threshold best on the other splits (average F1)"
    else:
        if selection not in sweeps:
            raise ValueError(f"threshold selection split {selection!r} was not evaluated (splits: {list(sweeps)})")
        chosen = dict.fromkeys(sweeps, best([selection]))
        held_out = [s for s in sweeps if s != selection]
        rule = f"tuned on {selection}: the threshold with the best F1 there, applied to every split"
    f1 = {s: sweeps[s][chosen[s]] for s in sweeps}
    return {
        "selection": selection,
        "rule": rule,
        "thresholds": {s: float(k) for s, k in chosen.items()},
        "f1": f1,
        "average_f1": sum(f1.values()) / len(f1),
        "average_f1_held_out": sum(f1[s] for s in held_out) / len(held_out) if held_out else None,
        "held_out_splits": held_out,
    }
