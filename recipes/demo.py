"""The whole train -> evaluate -> search loop on the bundled arithmetic world, on a CPU, in minutes.

    make demo        # = .venv/bin/python recipes/demo.py --output_dir demo_output

    python recipes/demo.py --output_dir demo_output --seeds 0 1 2 [--train_policy]

Per seed: sample the policy (``recipes/arith/policy``, shipped; ``--train_policy`` retrains it with
``recipes/arith/policy.yaml``), label steps exactly and by Monte-Carlo rollouts, train a PRM with
``recipes/train_prm.py`` (``recipes/arith/prm.yaml``), evaluate it with ``recipes/eval_prm.py`` on a held-out split in
ProcessBench layout, and search held-out problems with ``recipes/run_search.py`` (Best-of-N, beam search, DVTS). Then
the seeds' runs are pooled and analysed as ``recipes/compute_optimal.py`` does (``OUT/compute_optimal/``). Writes
``OUT/report.md`` (tables, mean ± std over seeds, the compute-optimal curve and its reading), ``OUT/scaling.png`` and
``OUT/results.json``; prints the time of every stage.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

from arith_demo.demo import LARGE_POLICY_RUN, DemoConfig, StageTimer, run_seed
from arith_demo.report import markdown_report, scaling_plot
from arith_demo.scaling import compute_optimal_section, compute_optimal_stage, compute_optimal_summary
from arith_demo.summary import summary_block


def main(config: DemoConfig) -> list[dict]:
    from arith_demo.policy import PolicyTrainingConfig, load_policy, train_policy
    from search.generators.transformers_backend import TransformersGenerator

    start = time.perf_counter()
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    timer = StageTimer()
    with timer.stage("policy"):
        if config.train_policy or not (Path(config.policy_path) / "model.safetensors").is_file():
            from trl import TrlParser

            (policy_config,) = TrlParser((PolicyTrainingConfig,)).parse_yaml_file(
                str(Path(config.config_dir) / "policy.yaml")
            )
            config.policy_path = str(out / "policy")
            train_policy(policy_config, config.policy_path)
        model, tokenizer = load_policy(config.policy_path)
        generator = TransformersGenerator(model=model, tokenizer=tokenizer, device="cpu", max_batch_size=1024)
    results = [run_seed(config, seed, generator, timer) for seed in config.seeds]
    with timer.stage("compute-optimal analysis (recipes/compute_optimal.py)"):
        references = [LARGE_POLICY_RUN] if config.large_policy_path else []
        scaling = compute_optimal_stage(out, config.seeds, config.tree_ns, references=references)
    settings = {
        **asdict(config),
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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cli.run(__file__, main, (DemoConfig,))
