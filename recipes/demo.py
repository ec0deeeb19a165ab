"""The whole train -> evaluate -> search loop on the bundled arithmetic world, on a CPU, in minutes.

    make demo        # = .venv/bin/python recipes/demo.py --output_dir demo_output
    make demo-vllm   # = .venv-vllm/bin/python recipes/demo.py --output_dir demo_output_vllm (vLLM engines, CPU)

    python recipes/demo.py --output_dir demo_output --seeds 0 1 2 [--train_policy]

Per seed: sample the policy (``recipes/arith/policy``, shipped; ``--train_policy`` retrains it with
``recipes/arith/policy.yaml``), label steps exactly and by Monte-Carlo rollouts, train a PRM with
``recipes/train_prm.py`` (``recipes/arith/prm.yaml``), evaluate it with ``recipes/eval_prm.py`` on a held-out split in
ProcessBench layout, and search held-out problems with ``recipes/run_search.py`` (Best-of-N, beam search, DVTS). Then
the seeds' runs are pooled and analysed as ``recipes/compute_optimal.py`` does (``OUT/compute_optimal/``). Writes
``OUT/report.md`` (tables, mean ± std over seeds, the compute-optimal curve and its reading), ``OUT/scaling.png`` and
``OUT/results.json``; prints the time of every stage.

``--backend`` (default ``auto``: vLLM where ``import vllm`` works, e.g. in ``.venv-vllm``, else transformers) picks
the engine of the policy sampling, the searches' generator and PRM, and the PRM's ProcessBench evaluation; each
model's engine is built once and reused by every stage (``arith_demo/engines.py``). PRM training is transformers.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

from arith_demo.demo import LARGE_POLICY_RUN, DemoConfig, StageTimer, run_seed
from arith_demo.engines import Engines, policy_arguments, resolve_backend
from arith_demo.report import markdown_report, scaling_plot
from arith_demo.scaling import compute_optimal_section, compute_optimal_stage, compute_optimal_summary
from arith_demo.summary import summary_block


def main(config: DemoConfig) -> list[dict]:
    start = time.perf_counter()
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    timer = StageTimer()
    engines = Engines(resolve_backend(config.backend))
    print(f"[demo] engine: {engines.backend} (backend {config.backend})", flush=True)
    try:
        return run_demo(config, engines, timer, start)
    finally:
        engines.close()


def run_demo(config: DemoConfig, engines: Engines, timer: StageTimer, start: float) -> list[dict]:
    from arith_demo.policy import PolicyTrainingConfig, train_policy

    out = Path(config.output_dir)
    with timer.stage("policy"):
        if config.train_policy or not (Path(config.policy_path) / "model.safetensors").is_file():
            from trl import TrlParser

            (policy_config,) = TrlParser((PolicyTrainingConfig,)).parse_yaml_file(
                str(Path(config.config_dir) / "policy.yaml")
            )
            config.policy_path = str(out / "policy")
            train_policy(policy_config, config.policy_path)
        engines.generator(policy_arguments(config.policy_path, engines))  # built once, used by every stage
    results = [run_seed(config, seed, engines, timer) for seed in config.seeds]
    with timer.stage("compute-optimal analysis (recipes/compute_optimal.py)"):
        references = [LARGE_POLICY_RUN] if config.large_policy_path else []
        scaling = compute_optimal_stage(out, config.seeds, config.tree_ns, references=references)
    settings = {
        **asdict(config),
        "engine": engines.backend,
        "policy": config.policy_path,
        "timings": {**timer.times, "total": (time.perf_counter() - start, time.process_time())},
    }
    summary = summary_block(results, settings, scaling, total_seconds=time.perf_counter() - start)
    document = {
        "summary": summary,
        "settings": settings,
        "seeds": results,
        "compute_optimal": compute_optimal_summary(scaling),
    }
    (out / "results.json").write_text(json.dumps(document, indent=2, default=str))
    report = markdown_report(results, settings, summary) + "\n" + "\n".join(compute_optimal_section(scaling)) + "\n"
    (out / "report.md").write_text(report)
    scaling_plot(results, out / "scaling.png")
    print(f"[demo] total: {time.perf_counter() - start:.1f} s; report: {out / 'report.md'}", flush=True)
    return results


if __name__ == "__main__":
    from prm import cli

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # vLLM engines run inside this process: a spawned engine process re-imports torch and vLLM (about 55 s per
    # engine on a busy 2-core machine, against 4 s in process), far longer than the demo's models take to run.
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cli.run(__file__, main, (DemoConfig,))
