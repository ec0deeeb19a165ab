"""Run a search method over a dataset: batched, resumable, shardable.

``OUT/results.jsonl`` gets one line per problem (layout in :mod:`search.results`) as soon as its batch finishes.
Batches are aligned to absolute dataset indices (``index // search_batch_size``) and generation seeds depend
only on the configured seed, the iteration and the prompt (never on which problems share a call), so:

- a killed run restarted with the same settings recomputes the interrupted batch exactly, appends only the
  missing lines and ends with the same file, byte for byte, as an uninterrupted run;
- shards (``dataset_start`` / ``dataset_end``) whose bounds are multiples of ``search_batch_size`` search
  exactly the batches of an unsharded run, so merged shards equal the unsharded results.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from prm.atomic import write_text
from prm.grading import gold_answer
from prm.verifiers.arguments import load_prm

from .beam_search import beam_search
from .best_of_n import best_of_n
from .config import DatasetArguments, SearchConfig, SearchScriptArguments
from .dvts import dvts
from .generators import GeneratorArguments, load_generator_from_args
from .primitives import FullScorer
from .results import RESULTS_FILE, append_rows, merge_results, read_results, result_row

logger = logging.getLogger(__name__)

METHODS = {"best_of_n": best_of_n, "beam_search": beam_search, "dvts": dvts}


@dataclass
class Problem:
    index: int
    problem: str
    answer: str


def load_problems(args: DatasetArguments) -> list[Problem]:
    """The shard's problems, read through ``datasets.load_dataset`` (hub name, local file or folder).

    A malformed file or row is an error naming the file (or dataset) and the row: a problem must be a non-empty
    string and every row needs a gold answer.
    """
    from datasets import load_dataset

    from prm.data import load_local_file

    name = args.dataset_name
    if os.path.isfile(name):
        dataset = load_local_file(name, args.dataset_split)
    else:
        dataset = load_dataset(name, args.dataset_config, split=args.dataset_split)
    columns = dataset.column_names
    problem_column = args.problem_column or ("problem" if "problem" in columns else "question")
    for column in (problem_column, args.answer_column):
        if column not in columns:
            raise ValueError(f"{name}: no column {column!r} (columns: {columns}); set problem_column/answer_column")
    start = args.dataset_start or 0
    end = len(dataset) if args.dataset_end is None else min(args.dataset_end, len(dataset))
    if start >= end:
        raise ValueError(f"{name} has {len(dataset)} rows: the shard [{start}, {end}) is empty")
    rows = dataset.select(range(start, end))
    problems = []
    for i, (p, a) in enumerate(zip(rows[problem_column], rows[args.answer_column]), start):
        if not isinstance(p, str) or not p.strip():
            raise ValueError(f"{name}, row {i}: field {problem_column!r} must be a non-empty string, got {p!r:.60}")
        try:
            gold = None if a is None or isinstance(a, (list, dict, bool)) else gold_answer(a, args.answer_format)
        except ValueError as error:
            raise ValueError(f"{name}, row {i}: field {args.answer_column!r}: {error}") from None
        if not gold:
            raise ValueError(f"{name}, row {i}: field {args.answer_column!r} must hold the gold answer, got {a!r:.60}")
        problems.append(Problem(i, p, gold))
    return problems


def make_scorer(verifier, config: SearchConfig):
    """Prefix-cached scoring for tree search with a token-classification PRM, full re-scoring otherwise."""
    if config.prefix_cache and config.method != "best_of_n":
        from prm.verifiers.batching import base_and_head
        from prm.verifiers.prefix_cache import PrefixCachedScorer
        from prm.verifiers.token_cls import TokenClassificationVerifier

        cacheable = isinstance(verifier, TokenClassificationVerifier) and verifier.step_likelihood_weight is None
        if cacheable and base_and_head(verifier.model) is not None:
            return PrefixCachedScorer.from_verifier(verifier)
        logger.info("%s has no prefix cache: every beam is re-scored in full", type(verifier).__name__)
    return FullScorer(verifier)


def run_search(
    problems: list[Problem],
    generator,
    verifier,
    config: SearchConfig,
    output_dir: str | os.PathLike,
    extract_answer: Callable[[str], str | None] | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    grader=None,
) -> Path:
    """Search every problem not already in ``OUT/results.jsonl`` and append its line; returns the file's path.

    ``on_row`` is called after each line is written (progress hooks; tests use it to interrupt a run). ``grader``
    (default: the shared :class:`prm.grading.MathGrader`) groups equivalent answers for each line's ``pred``.
    """
    if extract_answer is None:
        from prm.grading import extract_answer
    if grader is None:
        from prm.grading import default_grader

        grader = default_grader()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / RESULTS_FILE
    done = _done_indices(path, problems)
    todo = _pending_batches(problems, done, config.search_batch_size)
    scorer = make_scorer(verifier, config)
    method = METHODS[config.method]
    with tqdm(
        total=len(problems),
        initial=len(problems) - sum(p.index not in done for b in todo for p in b),
        desc=f"Search ({config.method})",
        unit="problem",
    ) as progress:
        for batch in todo:
            results = method([p.problem for p in batch], generator, scorer, config, config.seed)
            for p, result in zip(batch, results):
                if p.index in done:
                    continue
                row = result_row(
                    p.index,
                    p.problem,
                    p.answer,
                    result,
                    config.agg_strategy,
                    extract_answer,
                    grader,
                    method=config.method,
                    seed=config.seed,
                )
                append_rows(path, [row])
                progress.update(1)
                if on_row is not None:
                    on_row(row)
    return path


def _done_indices(path: Path, problems: list[Problem]) -> set[int]:
    """Indices already in the results file (a torn last line from a killed run is cut off)."""
    done = {row["index"] for row in read_results(path, repair=True)}
    if done:
        logger.info(
            "Resuming: %d of %d problems already in %s", len(done & {p.index for p in problems}), len(problems), path
        )
    return done


def _pending_batches(problems: list[Problem], done: set[int], batch_size: int) -> list[list[Problem]]:
    """Batches aligned to absolute dataset indices (``index // batch_size``) that still hold an unsearched problem;
    a batch is searched whole so that its samples do not depend on where a previous run stopped."""
    batches: dict[int, list[Problem]] = {}
    for p in problems:
        batches.setdefault(p.index // batch_size, []).append(p)
    return [b for b in batches.values() if any(p.index not in done for p in b)]


def write_settings(output_dir: str | os.PathLike, **sections: Any) -> None:
    """Record the run's settings next to its results (``OUT/search_config.json``)."""
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    payload = {k: asdict(v) if hasattr(v, "__dataclass_fields__") else v for k, v in sections.items()}
    write_text(Path(output_dir, "search_config.json"), json.dumps(payload, indent=2, default=str) + "\n")


def write_metrics(output_dir: str | os.PathLike, agg_strategy: str, title: str | None = None) -> dict[str, Any]:
    """``OUT/metrics.json`` (naive/weighted/maj/pass accuracy for n = 1, 2, 4, ..., N) and ``OUT/scaling.png``."""
    from eval.pool import write_pool_metrics
    from prm.grading import MathGrader

    path = Path(output_dir) / RESULTS_FILE
    grader = MathGrader()
    try:
        return write_pool_metrics(read_results(path), output_dir, agg_strategy, grader, source=str(path), title=title)
    finally:
        grader.close()


def search_from_args(
    script_args: SearchScriptArguments,
    search_args: SearchConfig,
    data_args: DatasetArguments,
    generator_args: GeneratorArguments,
    *,
    generator=None,
    verifier=None,
) -> dict[str, Any] | None:
    """Search (or merge shards), grade and report to W&B when asked, as ``recipes/run_search.py`` does; the pool
    metrics, or None with ``skip_metrics``.

    ``generator`` and ``verifier``, when given, are used instead of loading the ones the arguments name (a caller
    that runs many searches with the same models builds each engine once); the arguments are still recorded.
    """
    if script_args.merge:
        merge_results(script_args.merge, Path(script_args.output_dir) / RESULTS_FILE)
    else:
        if not script_args.prm_path:
            raise ValueError("--prm_path is required")
        problems = load_problems(data_args)
        if verifier is None:
            verifier = load_prm(script_args, script_args.prm_trust_remote_code)
        if generator is None:
            generator = load_generator_from_args(generator_args)
        write_settings(
            script_args.output_dir,
            search=search_args,
            data=data_args,
            generator=generator_args,
            verifier={
                "prm_path": script_args.prm_path,
                "verifier_type": script_args.verifier_type,
                "verifier_backend": script_args.verifier_backend,
            },
        )
        run_search(problems, generator, verifier, search_args, script_args.output_dir)
    if script_args.skip_metrics:
        return None
    from eval.tracking import report_search

    metrics = write_metrics(script_args.output_dir, search_args.agg_strategy, title=search_args.method)
    report_search(metrics, script_args.output_dir, search_args.report_to, search_args.run_name)
    return metrics
