"""The whole loop on the arithmetic world: policy -> labelled data -> PRM -> ProcessBench-style evaluation -> search.

Each stage calls the package function behind a recipe (``recipes/train_prm.py``, ``recipes/eval_prm.py``,
``recipes/run_search.py``) with settings parsed from the YAML configs in ``recipes/arith/`` exactly as on a command
line, so the demo exercises the same code paths a GPU user runs. ``recipes/demo.py`` is the thin entry point.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from .analysis import line_discrimination, pool_statistics
from .engines import DemoBackend, Engines, backend_overrides, policy_arguments
from .labeling import (
    balanced_heldout,
    error_kinds,
    line_check_rows,
    mc_label_solutions,
    measured_mix,
    processbench_records,
    sample_labeled_solutions,
)
from .world import DIFFICULTIES, make_problems

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPES = REPO_ROOT / "recipes"
SPLIT = "arith"
LARGE_POLICY_RUN = "large_policy"  # the run folder of the larger policy's samples in each seed's folder


@dataclass
class DemoConfig:
    """Sizes of the demo; the defaults fit the 10-minute budget on 2 CPU cores."""

    output_dir: str = field(default="demo_output", metadata={"help": "Where everything is written."})
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"help": "One full loop per seed."})
    policy_path: str = field(
        default=str(RECIPES / "arith" / "policy"), metadata={"help": "The policy to load (the shipped one)."}
    )
    train_policy: bool = field(
        default=False, metadata={"help": "Train the policy with recipes/arith/policy.yaml instead of loading it."}
    )
    config_dir: str = field(
        default=str(RECIPES / "arith"), metadata={"help": "Folder of prm.yaml, best_of_n.yaml, beam_search.yaml, ..."}
    )
    difficulty: str = field(default="medium", metadata={"help": "ArithProblem difficulty (must match the policy's)."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of data and search."})
    backend: DemoBackend = field(
        default="auto",
        metadata={
            "help": "Engine of the policy sampling, the searches' generator and PRM, and the PRM's evaluation: "
            "transformers, vllm (the venv of `make env-vllm` on CPU), or auto (vllm where `import vllm` works). "
            "PRM training always runs in transformers."
        },
    )
    train_problems: int = field(default=200, metadata={"help": "Problems whose policy samples train the PRM."})
    samples_per_problem: int = field(default=4, metadata={"help": "Policy samples per training problem."})
    synthetic_problems: int = field(
        default=30_000, metadata={"help": "Problems with a synthetic solution whose lines go wrong at random."}
    )
    line_error_rate: float = field(
        default=0.35, metadata={"help": "Chance that each line of a synthetic solution is wrong (kind: measured)."}
    )
    policy_sample_copies: int = field(
        default=1,
        metadata={
            "help": "Copies of each policy sample among the PRM's training rows (800 samples are 2.6% of the rows "
            "beside 30,000 synthetic solutions; 10 copies helped on seed 0 but not over 3 seeds, README)."
        },
    )
    default_mix_weight: float = field(
        default=0.0,
        metadata={
            "help": "Share of the default corruption mix (every kind the same-prefix test draws) blended into the "
            "policy's measured mix of mistakes for the synthetic wrong lines; 0: the measured mix alone."
        },
    )
    prm_labels: Literal["exact", "mc-hard", "mc-soft"] = field(
        default="exact",
        metadata={
            "help": "What the PRM trains on. exact: every line labelled by the exact checker, on policy samples plus "
            "synthetic solutions with wrong lines. mc-hard / mc-soft: only the policy's samples, every step labelled "
            "by Monte-Carlo rollouts (hard: some rollout reaches the answer; soft: the share that does), as a user "
            "without a step checker would; all policy samples are then rolled out, not just mc_solutions."
        },
    )
    mc_solutions: int = field(
        default=48, metadata={"help": "Policy samples labelled by Monte-Carlo rollouts to measure their agreement."}
    )
    mc_rollouts: int = field(default=4, metadata={"help": "K: rollouts per step prefix."})
    num_eval_solutions: int = field(default=200, metadata={"help": "Held-out solutions in ProcessBench layout."})
    num_search_problems: int = field(default=60, metadata={"help": "Held-out problems searched per seed."})
    n: int = field(default=16, metadata={"help": "Largest N (Best-of-N pool size; tree search budgets up to it)."})
    tree_ns: list[int] = field(default_factory=lambda: [4, 16], metadata={"help": "N for beam search and DVTS."})
    prm_max_steps: int | None = field(default=None, metadata={"help": "Override prm.yaml's max_steps."})
    prm_init: str | None = field(
        default=None,
        metadata={
            "help": "The PRM's starting weights, overriding prm.yaml's model_name_or_path (the larger policy, "
            "recipes/arith/policy_large); 'policy': the policy the demo samples (shipped or just trained)."
        },
    )
    heldout_seed: int = field(default=10_000, metadata={"help": "Seed of the held-out problems (policy's too)."})
    large_policy_path: str | None = field(
        default=str(RECIPES / "arith" / "policy_large"),
        metadata={
            "help": "A larger policy sampled N times on the same search problems (single sample and majority vote, "
            "no search): the reference the small policy with search is compared with. none: skip it."
        },
    )


class StageTimer:
    """Wall and CPU seconds of each stage, printed as they finish."""

    def __init__(self):
        self.times: dict[str, tuple[float, float]] = {}

    @contextmanager
    def stage(self, name: str):
        wall, cpu = time.perf_counter(), time.process_time()
        logger.info("== %s", name)
        yield
        spent = (time.perf_counter() - wall, time.process_time() - cpu)
        previous = self.times.get(name, (0.0, 0.0))
        self.times[name] = (previous[0] + spent[0], previous[1] + spent[1])
        print(f"[demo] {name}: {spent[0]:.1f} s wall, {spent[1]:.1f} s CPU", flush=True)


def parse_recipe_args(dataclass_types, config: Path, overrides: dict[str, Any]):
    """Parse a recipe's dataclasses from its YAML plus command-line style overrides, as ``TrlParser`` does."""
    from trl import TrlParser

    args = ["--config", str(config)]
    for key, value in overrides.items():
        if isinstance(value, (list, tuple)):
            args += [f"--{key}", *map(str, value)]
        else:
            args += [f"--{key}", str(value)]
    return TrlParser(dataclass_types).parse_args_and_config(args=args)


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def make_data(config: DemoConfig, seed: int, generator, out: Path, timer: StageTimer) -> dict[str, Any]:
    """Policy samples with exact labels + synthetic contrastive pairs (training), MC labels (agreement), and the
    held-out ProcessBench-layout split."""
    from search.mc_labeling import MCLabelingConfig

    difficulty = DIFFICULTIES[config.difficulty]
    heldout = make_problems(500, config.heldout_seed, difficulty)
    exclude = {p.text for p in heldout}
    with timer.stage("sample policy solutions"):
        train_problems = make_problems(config.train_problems, 20_000 + seed, difficulty, exclude=exclude)
        samples = sample_labeled_solutions(
            generator, train_problems, config.samples_per_problem, config.temperature, seed=seed
        )
        eval_problems = heldout[300:]
        eval_samples = sample_labeled_solutions(generator, eval_problems, 4, config.temperature, seed=1000 + seed)
    kinds = error_kinds(samples)
    with timer.stage("Monte-Carlo labels"):
        mc_set = samples if config.prm_labels != "exact" else samples[: config.mc_solutions]
        mc_config = MCLabelingConfig(
            num_rollouts=config.mc_rollouts, temperature=config.temperature, max_new_tokens=64
        )
        mc = mc_label_solutions(generator, mc_set, mc_config)
        write_jsonl(out / "mc-hard" / "train.jsonl", mc.hard_rows)
        write_jsonl(out / "mc-soft" / "train.jsonl", mc.soft_rows)
    with timer.stage("synthetic solutions with wrong lines"):
        if config.prm_labels == "exact":
            synth_problems = make_problems(config.synthetic_problems, 30_000 + seed, difficulty, exclude=exclude)
            mix = measured_mix(samples, default_weight=config.default_mix_weight)
            rows = line_check_rows(
                samples, synth_problems, seed, config.line_error_rate, mix, config.policy_sample_copies
            )
            write_jsonl(out / "prm_data" / "train.jsonl", rows)
        else:
            rows = mc.hard_rows
        picked = balanced_heldout(eval_samples, seed, config.num_eval_solutions // 2)
        (out / "heldout").mkdir(parents=True, exist_ok=True)
        (out / "heldout" / f"{SPLIT}.json").write_text(json.dumps(processbench_records(picked, SPLIT)))
    return {
        "train_rows": len(rows),
        "policy_samples": len(samples),
        "policy_sample_accuracy": sum(s.correct for s in samples) / max(len(samples), 1),
        "error_kinds": dict(kinds),
        "heldout_erroneous": sum(not s.correct for s in picked),
        "heldout_correct": sum(s.correct for s in picked),
        "mc": {**mc.agreement, "rollouts": mc.num_rollouts, "generated_tokens": mc.generated_tokens},
    }


def in_repository(path: str | None) -> str | None:
    """A path from a recipe YAML, which names files relative to the repository root: as given where it exists,
    else the repository's own (the demo may run from any folder)."""
    if path and not Path(path).exists() and (REPO_ROOT / path).exists():
        return str(REPO_ROOT / path)
    return path


def prm_start(config: DemoConfig, yaml_model: str | None) -> str | None:
    """The weights the PRM starts from: ``--prm_init`` if given ('policy': the policy the demo samples), else
    prm.yaml's ``model_name_or_path``."""
    if config.prm_init is not None:
        return config.policy_path if config.prm_init == "policy" else config.prm_init
    return in_repository(yaml_model)


def train_prm(config: DemoConfig, seed: int, out: Path) -> Path:
    from trl import ModelConfig

    from eval.callback import training_callbacks
    from prm.training import PRMConfig
    from prm.training.pipeline import PRMScriptArguments, train_from_args

    overrides: dict[str, Any] = {
        "dataset_name": out / ("prm_data" if config.prm_labels == "exact" else config.prm_labels),
        "output_dir": out / "prm",
        "seed": seed,
        "tokenizer_name_or_path": config.policy_path,
    }
    if config.prm_max_steps is not None:
        overrides["max_steps"] = config.prm_max_steps
    prm_yaml = Path(config.config_dir) / "prm.yaml"
    script_args, training_args, model_args = parse_recipe_args(
        (PRMScriptArguments, PRMConfig, ModelConfig), prm_yaml, overrides
    )
    script_args.init_from_config = in_repository(script_args.init_from_config)
    model_args.model_name_or_path = prm_start(config, model_args.model_name_or_path)
    train_from_args(script_args, training_args, model_args, callbacks=training_callbacks(script_args))
    return out / "prm"


def evaluate_prm(config: DemoConfig, seed: int, prm_path: Path, out: Path, engines: Engines) -> dict[str, Any]:
    from eval.config import ProcessBenchArguments, VerifierArguments
    from eval.evaluate import evaluate_from_args, load_eval_verifier

    script_args, model_args = parse_recipe_args(
        (ProcessBenchArguments, VerifierArguments),
        Path(config.config_dir) / "eval.yaml",
        {
            "model_name_or_path": prm_path,
            "output_dir": out / "eval",
            "data_dir": out / "heldout",
            "splits": [SPLIT],
            **backend_overrides(engines, prm_path, generator=False),
        },
    )
    # The same engine scores the held-out split, the same-prefix pairs and, later, the searches.
    verifier = engines.verifier(str(prm_path), lambda: load_eval_verifier(model_args, device="cpu"))
    split = evaluate_from_args(script_args, model_args, verifier=verifier)[SPLIT]  # one process: results come back
    heldout = make_problems(500, config.heldout_seed, DIFFICULTIES[config.difficulty])
    line = line_discrimination(verifier, heldout[300:], seed=seed)
    return {
        "f1": split["f1"],
        "error_acc": split["error_acc"],
        "correct_acc": split["correct_acc"],
        "line": asdict(line),
    }


def search_problems_file(config: DemoConfig, seed: int, out: Path) -> Path:
    heldout = make_problems(500, config.heldout_seed, DIFFICULTIES[config.difficulty])
    start = (seed % 3) * 100
    problems = heldout[start : start + config.num_search_problems]
    path = out / "search_problems.jsonl"
    write_jsonl(path, [{"problem": p.text, "answer": str(p.answer)} for p in problems])
    return path


def run_search(
    config: DemoConfig, seed: int, method: str, n: int, prm_path: Path, problems: Path, out: Path, engines: Engines
):
    """One ``recipes/run_search.py`` run from a fresh folder, with the demo's engines; returns its pool metrics and
    results rows."""
    from prm.verifiers.arguments import load_prm
    from search.config import DatasetArguments, SearchConfig, SearchScriptArguments
    from search.generators import GeneratorArguments
    from search.runner import search_from_args

    if out.exists():
        shutil.rmtree(out)  # results.jsonl resumes; a previous demo's PRM must not leak into this one
    overrides = {
        "n": n,
        "seed": seed,
        "output_dir": out,
        "prm_path": prm_path,
        "dataset_name": problems,
        "generator_model_name_or_path": config.policy_path,
        "temperature": config.temperature,
        **backend_overrides(engines, prm_path, generator=True),
    }
    parsed = parse_recipe_args(
        (SearchScriptArguments, SearchConfig, DatasetArguments, GeneratorArguments),
        Path(config.config_dir) / f"{method}.yaml",
        overrides,
    )
    script_args, generator_args = parsed[0], parsed[3]
    metrics = search_from_args(
        *parsed,
        generator=engines.generator(generator_args),
        verifier=engines.verifier(str(prm_path), lambda: load_prm(script_args, script_args.prm_trust_remote_code)),
    )
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
    return metrics, rows


def search_stages(
    config: DemoConfig, seed: int, prm_path: Path, out: Path, timer: StageTimer, engines: Engines
) -> dict[str, Any]:
    """Best-of-N, beam search and DVTS with the PRM, and the larger policy's samples, on the same problems; with
    every method's per-problem correctness (for paired gains) next to its metrics."""
    from arith_demo.summary import per_problem_correct
    from prm.grading import default_grader

    grader = default_grader()
    problems = search_problems_file(config, seed, out)
    search: dict[str, Any] = {}
    with timer.stage("search: Best-of-N"):
        metrics, rows = run_search(config, seed, "best_of_n", config.n, prm_path, problems, out / "best_of_n", engines)
        search["best_of_n"] = metrics
        agg = metrics["agg_strategy"]
        per_problem = {"best_of_n": per_problem_correct(rows, grader, agg, sorted(metrics["weighted"]))}
    for method in ("beam_search", "dvts"):
        with timer.stage(f"search: {method}"):
            search[method], per_problem[method] = {}, {}
            for n in config.tree_ns:
                metrics, tree_rows = run_search(
                    config, seed, method, n, prm_path, problems, out / f"{method}_n{n}", engines
                )
                search[method][n] = metrics
                per_problem[method][n] = per_problem_correct(tree_rows, grader, agg, [n])["weighted"][n]
    result = {"search": search, "per_problem": per_problem, "rows": rows}
    if config.large_policy_path:
        with timer.stage("larger policy: N samples, no search"):
            large = replace(config, policy_path=config.large_policy_path)
            metrics, large_rows = run_search(
                large, seed, "best_of_n", config.n, prm_path, problems, out / "large_policy", engines
            )
            columns = per_problem_correct(large_rows, grader, agg, [config.n])
            result["larger_policy"] = {
                "n": config.n,
                "single": 100.0 * sum(columns["single"]) / max(len(columns["single"]), 1),
                "majority": metrics["maj"][config.n],
                "per_problem": {"single": columns["single"], "maj": columns["maj"][config.n]},
            }
    return result


def run_seed(config: DemoConfig, seed: int, engines: Engines, timer: StageTimer) -> dict[str, Any]:
    out = Path(config.output_dir) / f"seed_{seed}"
    data = make_data(config, seed, engines.generator(policy_arguments(config.policy_path, engines)), out, timer)
    with timer.stage("train PRM (recipes/train_prm.py)"):
        prm_path = train_prm(config, seed, out)
    with timer.stage("evaluate PRM (recipes/eval_prm.py)"):
        prm = evaluate_prm(config, seed, prm_path, out, engines)
    searched = search_stages(config, seed, prm_path, out, timer, engines)
    pool = pool_statistics(searched.pop("rows"))
    prm.update({k: pool[k] for k in ("ranking", "ranking_pairs", "ranking_ceiling", "ranking_process", "step_auroc")})
    result = {
        "seed": seed,
        "policy": {"single": pool["single"], "step_accuracy": pool["step_accuracy"]},
        "data": data,
        "mc": data["mc"],
        "prm": prm,
        **searched,
    }
    (out / "summary.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result
