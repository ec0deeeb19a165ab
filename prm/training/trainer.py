"""PRMTrainer: a ``transformers.Trainer`` for token-classification process reward models."""

from __future__ import annotations

import inspect
import logging
from typing import Any

import torch
import torch.nn.functional as F
from transformers import Trainer
from transformers.modeling_outputs import TokenClassifierOutput
from transformers.trainer_pt_utils import LengthGroupedSampler, get_length_grouped_indices

from prm.data import IGNORE_INDEX, save_separator, tokenize_dataset
from prm.data.tokenizer import pad_token_id
from prm.step_likelihood import CONFIG_KEY as STEP_LIKELIHOOD_KEY
from prm.step_likelihood import add_step_likelihood, tied_output_embeddings

from .collator import PRMDataCollator
from .config import PRMConfig
from .metrics import compute_prm_metrics, correct_step_probability
from .model_card import write_model_card

logger = logging.getLogger(__name__)

# Attention implementations that keep packed sequences apart when given restarting position_ids and no
# attention_mask: transformers' mask utilities turn the restarts into a block-diagonal causal mask (sdpa, eager,
# flex) and the flash-attention integrations into varlen cu_seqlens.
PADDING_FREE_ATTENTION = ("sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention")


def prm_loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed step loss and the number of labelled positions.

    Integer labels: cross-entropy over the two classes (0 = wrong, 1 = correct). Float labels p: cross-entropy
    against the target distribution [1 - p, p], which equals the hard loss when p is 0 or 1. -100 is ignored.
    """
    mask = labels != IGNORE_INDEX
    log_probs = F.log_softmax(logits[mask].float(), dim=-1)
    targets = labels[mask]
    if targets.is_floating_point():
        p = targets.float()
        losses = -(p * log_probs[:, 1] + (1.0 - p) * log_probs[:, 0])
    else:
        losses = -log_probs.gather(1, targets.long()[:, None]).squeeze(1)
    return losses.sum(), mask.sum()


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """Length-grouped batches in a shuffled order that depends only on (seed, epoch).

    The batches are those of transformers' ``LengthGroupedSampler`` (random mega-batches of 50 batches, each
    sorted by length and cut into batches), but that sampler then runs every mega-batch from its longest batch to
    its shortest, and the model always ends a mega-batch on its shortest solutions: on the benchmark's workload
    that raised the held-out loss from TRL's 0.370 to 0.439 (benchmarks/train_throughput.py, seed 0). Here the
    batches after the first (which keeps the longest row, so an out-of-memory error comes at once) are shuffled;
    a short last batch stays last so every other batch is full. Seeded with seed + epoch, so a run resumed from a
    checkpoint in any epoch sees the same batches as an uninterrupted one (the Trainer calls ``set_epoch``).
    """

    def __init__(self, batch_size: int, lengths: list[int], seed: int):
        super().__init__(batch_size, lengths=lengths, generator=torch.Generator())
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        self.generator.manual_seed(self.seed + self.epoch)  # the same order however often it is iterated
        indices = get_length_grouped_indices(self.lengths, self.batch_size, generator=self.generator)
        batches = [indices[i : i + self.batch_size] for i in range(0, len(indices), self.batch_size)]
        last = [batches.pop()] if len(batches) > 1 and len(batches[-1]) < self.batch_size else []
        order = torch.randperm(len(batches) - 1, generator=self.generator).tolist() if batches else []
        batches = batches[:1] + [batches[1 + j] for j in order] + last
        return iter([i for batch in batches for i in batch])


def _unwrap_peft(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _disable_dropout(model: torch.nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def _check_arguments(model, args, processing_class, peft_config) -> None:
    """Refuse settings the trainer cannot honour before anything is built."""
    if args is None:
        raise ValueError("PRMTrainer needs a PRMConfig (args=...)")
    if not isinstance(args, PRMConfig):
        raise TypeError(f"args must be a prm.training.PRMConfig, got {type(args).__name__}")
    if processing_class is None:
        raise ValueError("PRMTrainer needs the tokenizer (processing_class=...) to tokenize and pad")
    if getattr(model.config, "num_labels", None) != 2:
        raise ValueError(f"A PRM is a 2-label token classifier; the model has num_labels={model.config.num_labels}")
    if args.padding_free:
        attention = getattr(model.config, "_attn_implementation", None)
        if attention not in PADDING_FREE_ATTENTION:
            raise ValueError(
                f"padding_free=True needs an attention implementation that isolates packed sequences "
                f"({', '.join(PADDING_FREE_ATTENTION)}); this model uses {attention!r}. Set padding_free=False."
            )
    if args.step_likelihood_weight is not None:
        _check_step_likelihood(model)
    if peft_config is not None and args.merge_lora_on_save:
        from transformers.integrations import is_deepspeed_zero3_enabled

        if is_deepspeed_zero3_enabled():
            raise ValueError(
                "merge_lora_on_save cannot merge adapters sharded by ZeRO-3; use ZeRO-2 or DDP for LoRA, or set "
                "merge_lora_on_save=False and merge the saved adapters afterwards."
            )


def _check_step_likelihood(model) -> None:
    from transformers.integrations import is_deepspeed_zero3_enabled

    if is_deepspeed_zero3_enabled():
        # The output embeddings are read outside the model's forward, where ZeRO-3 holds only a shard of them.
        raise ValueError("step_likelihood_weight is not supported with DeepSpeed ZeRO-3; use ZeRO-2 or DDP")
    tied_output_embeddings(_unwrap_peft(model))


def _prepare_model(model, args: PRMConfig, peft_config):
    """Record the separator (and step-likelihood weight), wrap in LoRA adapters when asked, and turn dropout off
    when asked."""
    # Recorded before any wrapping so every checkpoint's config.json carries them.
    save_separator(_unwrap_peft(model).config, args.separator)
    setattr(_unwrap_peft(model).config, STEP_LIKELIHOOD_KEY, args.step_likelihood_weight)
    if peft_config is not None:
        from peft import get_peft_model

        model = get_peft_model(model, peft_config)
    if args.disable_dropout:
        _disable_dropout(model)
    return model


class PRMTrainer(Trainer):
    """Train an ``AutoModelForTokenClassification`` (num_labels=2) on stepwise data.

    ``train_dataset``/``eval_dataset`` may be stepwise rows (prompt, completions, labels), which are tokenized
    here with :func:`prm.data.tokenize_dataset`, or already tokenized (``input_ids``, ``labels``).

    The loss is computed here rather than by the model: transformers' token-classification models ignore
    ``num_items_in_batch`` (transformers#47688), which multiplies the loss and the gradients by the number of
    gradient-accumulation steps and by the world size. Here the summed loss of each micro-batch is divided by the
    number of labelled steps in the whole accumulated, all-process batch, so the optimizer sees the mean over
    every labelled step of the global batch whatever the split into micro-batches and processes.
    """

    # compute_loss already normalizes over the whole accumulated batch.
    loss_is_scaled_for_ga = True

    def __init__(
        self,
        model=None,
        args: PRMConfig | None = None,
        train_dataset=None,
        eval_dataset=None,
        processing_class=None,
        data_collator=None,
        compute_metrics=None,
        callbacks=None,
        peft_config=None,
        preprocess_logits_for_metrics=None,
        model_card_info: dict[str, Any] | None = None,
        **kwargs,
    ):
        _check_arguments(model, args, processing_class, peft_config)
        # Models whose forward takes no use_cache (encoders) must not be passed one.
        self._pass_use_cache = "use_cache" in inspect.signature(_unwrap_peft(model).forward).parameters
        model = _prepare_model(model, args, peft_config)
        train_dataset, eval_dataset = self._tokenize_datasets(train_dataset, eval_dataset, processing_class, args)

        pad_id = pad_token_id(processing_class)
        if data_collator is None:
            data_collator = PRMDataCollator(pad_token_id=pad_id, padding_free=args.padding_free)
        # Evaluation keeps one solution per row: the first-error metrics need the solution boundaries.
        self.eval_collator = PRMDataCollator(pad_token_id=pad_id)
        self.model_card_info = {
            "base_model": getattr(_unwrap_peft(model).config, "_name_or_path", None) or None,
            "lora": hasattr(model, "merge_and_unload"),
            **(model_card_info or {}),
        }

        super().__init__(
            model=model,
            args=args,
            data_collator=data_collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            compute_metrics=compute_metrics if compute_metrics is not None else compute_prm_metrics,
            callbacks=callbacks,
            preprocess_logits_for_metrics=preprocess_logits_for_metrics or correct_step_probability,
            **kwargs,
        )
        # Makes Trainer count the labelled positions of each accumulated batch (gathered over processes) and pass
        # that count to compute_loss as num_items_in_batch; the model itself never sees it.
        self.model_accepts_loss_kwargs = True
        if hasattr(self.model, "add_model_tags"):
            self.model.add_model_tags(["prmkit", "process-reward-model"])

    @classmethod
    def _tokenize_datasets(cls, train_dataset, eval_dataset, tokenizer, args: PRMConfig):
        train_dataset = cls._tokenize_if_needed(train_dataset, tokenizer, args, "train", args.train_on_last_step_only)
        # Evaluation always scores every step (as TRL did): train_on_last_step_only shapes training only.
        if isinstance(eval_dataset, dict):
            eval_dataset = {
                k: cls._tokenize_if_needed(v, tokenizer, args, f"eval/{k}") for k, v in eval_dataset.items()
            }
        else:
            eval_dataset = cls._tokenize_if_needed(eval_dataset, tokenizer, args, "eval")
        return train_dataset, eval_dataset

    @staticmethod
    def _tokenize_if_needed(dataset, tokenizer, args: PRMConfig, name: str, last_step_only: bool = False):
        if dataset is None:
            return dataset
        if "input_ids" in dataset.column_names:
            if args.step_likelihood_weight is not None and "step_index" not in dataset.column_names:
                raise ValueError(
                    "step_likelihood_weight needs each token's step: pass stepwise rows, or tokenize with "
                    "prm.data.tokenize_dataset(..., with_step_index=True)"
                )
            return dataset
        from accelerate import PartialState

        with PartialState().main_process_first():
            tokenized, _ = tokenize_dataset(
                dataset,
                tokenizer,
                step_separator=args.separator,
                max_length=args.max_length,
                train_on_last_step_only=last_step_only,
                num_proc=args.dataset_num_proc,
                name=name,
                with_step_index=args.step_likelihood_weight is not None,
            )
        return tokenized

    # ---- loss ---------------------------------------------------------------------------------------------------

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        step_index = inputs.pop("step_index", None)
        weight = self.args.step_likelihood_weight
        if weight is not None:
            inputs["output_hidden_states"] = True
        # A cache would disable transformers' packed-sequence mask (padding-free) and is useless in training.
        outputs = model(**inputs, use_cache=False) if self._pass_use_cache else model(**inputs)
        if weight is not None:
            embeddings = tied_output_embeddings(_unwrap_peft(self.accelerator.unwrap_model(model)))
            logits = add_step_likelihood(
                outputs.logits, outputs.hidden_states[-1], inputs["input_ids"], step_index, embeddings, weight
            )
            # Only the logits go on: evaluation would otherwise gather every layer's hidden states.
            outputs = TokenClassifierOutput(logits=logits)
        loss_sum, count = prm_loss_sum(outputs.logits, labels)
        if num_items_in_batch is not None:
            loss = loss_sum / torch.clamp(torch.as_tensor(num_items_in_batch, device=loss_sum.device), min=1)
            if self.args.average_tokens_across_devices and self.args.world_size > 1:
                # DDP/DeepSpeed average gradients over processes; the count above is already global.
                loss = loss * self.accelerator.num_processes
        else:
            loss = loss_sum / torch.clamp(count, min=1)
        return (loss, outputs) if return_outputs else loss

    # ---- data ---------------------------------------------------------------------------------------------------

    def _get_train_sampler(self, train_dataset=None):
        train_dataset = train_dataset if train_dataset is not None else self.train_dataset
        if not self.args.group_by_length or train_dataset is None or not hasattr(train_dataset, "data"):
            return super()._get_train_sampler(train_dataset)
        import pyarrow.compute as pc

        # Lengths straight from the Arrow column: no pass over the rows in Python.
        lengths = pc.list_value_length(train_dataset.data.column("input_ids")).to_numpy().tolist()
        if train_dataset._indices is not None:
            lengths = [lengths[i] for i in train_dataset._indices.column(0).to_pylist()]
        return EpochSeededLengthGroupedSampler(
            self.args.train_batch_size * self.args.gradient_accumulation_steps,
            lengths=lengths,
            seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed,
        )

    def get_eval_dataloader(self, eval_dataset=None):
        collator, self.data_collator = self.data_collator, self.eval_collator
        try:
            return super().get_eval_dataloader(eval_dataset)
        finally:
            self.data_collator = collator

    # ---- saving -------------------------------------------------------------------------------------------------

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Save the model; the final (user-called) save of a LoRA run merges the adapters first when
        ``merge_lora_on_save`` is set, so the output is a plain ``AutoModelForTokenClassification``."""
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        unwrapped = self.accelerator.unwrap_model(self.model)
        if not _internal_call and self.args.merge_lora_on_save and hasattr(unwrapped, "merge_and_unload"):
            self.model = unwrapped.merge_and_unload()
            self._lora_merged = True
        if getattr(self, "_lora_merged", False):
            # The merged model lives outside the DDP/DeepSpeed wrappers (ZeRO-3 was refused at init, so every
            # rank holds full weights): save it directly instead of through the engine's checkpoint path.
            self._save(output_dir)
            if self.args.push_to_hub and not _internal_call:
                self.push_to_hub(commit_message="Model save", revision=self.args.hub_revision)
        else:
            super().save_model(output_dir, _internal_call=_internal_call)
        if not _internal_call and self.args.should_save:
            self.create_model_card(output_dir=output_dir)

    def create_model_card(self, model_name: str | None = None, output_dir: str | None = None, **kwargs) -> None:
        """Write README.md: base model, data, separator, prmkit version, settings, and evaluation results."""
        if not self.is_world_process_zero():
            return
        write_model_card(
            output_dir or self.args.output_dir,
            args=self.args,
            model_name=model_name,
            metrics=self._final_metrics(),
            **self.model_card_info,
        )

    def _final_metrics(self) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for entry in self.state.log_history:
            metrics.update({k: v for k, v in entry.items() if k.startswith("eval_")})
        return metrics
