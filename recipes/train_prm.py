"""Train a process reward model (token classifier over solution steps).

Launch (one CPU, tiny model, < 2 minutes):

    accelerate launch --config_file accelerate_configs/ddp.yaml --num_processes 1 --cpu \\
        recipes/train_prm.py --config recipes/tiny/cpu.yaml

Launch (8 GPUs, ZeRO-3, Qwen2.5-Math-1.5B-Instruct on Math-Shepherd):

    accelerate launch --config_file accelerate_configs/zero3.yaml \\
        recipes/train_prm.py --config recipes/qwen2.5-math-1.5b-instruct/math_shepherd_zero3.yaml

Any YAML key can be overridden on the command line (``--learning_rate 1e-5``). ``--step_separator '\\n\\n'``
(backslash-n as typed on a shell) means two newlines. Unknown keys are an error.
"""

from __future__ import annotations

import logging

from eval.callback import training_callbacks
from prm.training import PRMConfig, PRMTrainer
from prm.training.pipeline import PRMScriptArguments, train_from_args

logger = logging.getLogger("train_prm")


def main(script_args: PRMScriptArguments, training_args: PRMConfig, model_args) -> PRMTrainer:
    return train_from_args(script_args, training_args, model_args, callbacks=training_callbacks(script_args))


if __name__ == "__main__":
    from trl import ModelConfig

    from prm import cli

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Unknown or misspelt YAML keys and options, invalid values and malformed rows: one line naming the file and
    # row, exit status 1.
    cli.run(__file__, main, (PRMScriptArguments, PRMConfig, ModelConfig))
