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

from prm.training import PRMConfig, PRMTrainer
from prm.training.pipeline import (
    PRMScriptArguments,
    build_model,
    given,
    load_datasets,
    load_tokenizer,
    lora_config,
    resume_argument,
)

logger = logging.getLogger("train_prm")


def main(script_args: PRMScriptArguments, training_args: PRMConfig, model_args) -> PRMTrainer:
    tokenizer = load_tokenizer(script_args, model_args)
    model = build_model(script_args, model_args, training_args, tokenizer)
    train_dataset, eval_dataset = load_datasets(script_args, training_args)

    callbacks = []
    if given(script_args.processbench_dir):
        from eval.callback import ProcessBenchCallback

        callbacks.append(
            ProcessBenchCallback(data_dir=script_args.processbench_dir, limit=script_args.processbench_eval_limit)
        )

    trainer = PRMTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=lora_config(model_args),
        callbacks=callbacks,
        model_card_info={
            "base_model": model_args.model_name_or_path or given(script_args.init_from_config),
            "dataset": script_args.dataset_name,
            "dataset_splits": f"train: {script_args.dataset_train_split}",
        },
    )
    trainer.train(resume_from_checkpoint=resume_argument(training_args.resume_from_checkpoint))
    if eval_dataset is not None:
        metrics = trainer.evaluate()
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
    trainer.save_model(training_args.output_dir)
    trainer.save_state()  # trainer_state.json: the loss curve (log_history)
    if trainer.is_world_process_zero():
        logger.info("Saved the model to %s", training_args.output_dir)
    return trainer


if __name__ == "__main__":
    from trl import ModelConfig

    from prm import cli

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Unknown or misspelt YAML keys and options, invalid values and malformed rows: one line naming the file and
    # row, exit status 1.
    cli.run(__file__, main, (PRMScriptArguments, PRMConfig, ModelConfig))
