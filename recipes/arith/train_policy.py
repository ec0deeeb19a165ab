"""Train the arithmetic world's policy from scratch (and rebuild the one shipped in ``recipes/arith/policy``).

    python recipes/arith/train_policy.py --config recipes/arith/policy.yaml --output_dir recipes/arith/policy

Prints the policy's held-out accuracy (single sample, step accuracy, majority and pass@8 at temperature 1.0) and
writes it to ``<output_dir>/heldout_accuracy.json``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from arith_demo.policy import PolicyTrainingConfig, evaluate_policy, heldout_problems, train_policy


@dataclass
class PolicyScriptArguments:
    output_dir: str = field(default="recipes/arith/policy", metadata={"help": "Where the policy is saved."})
    eval_problems: int = field(default=300, metadata={"help": "Held-out problems used to measure accuracy."})
    eval_samples: int = field(default=8, metadata={"help": "Samples per held-out problem (temperature 1.0)."})


def main(script_args: PolicyScriptArguments, config: PolicyTrainingConfig) -> dict:
    start = time.time()
    model, tokenizer = train_policy(config, script_args.output_dir)
    train_s = time.time() - start
    problems = heldout_problems(config)[: script_args.eval_problems]
    accuracy, _ = evaluate_policy(model, tokenizer, problems, n=script_args.eval_samples, temperature=1.0)
    result = {**asdict(accuracy), "train_seconds": round(train_s, 1), "config": asdict(config)}
    Path(script_args.output_dir, "heldout_accuracy.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "config"}, indent=2))
    return result


if __name__ == "__main__":
    from prm import cli

    logging.basicConfig(level=logging.INFO)
    cli.run(__file__, main, (PolicyScriptArguments, PolicyTrainingConfig))
