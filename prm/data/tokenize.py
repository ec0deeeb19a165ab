"""The one tokenize function, shared by training, evaluation and search.

Layout (identical to TRL's former ``PRMTrainer.tokenize_row`` so PRMs trained by either are interchangeable):

    [bos] + prompt_ids + step_1_ids + sep_ids + step_2_ids + sep_ids + ...

Prompt and steps are tokenized separately without special tokens; TRL prepended the tokenizer's BOS token
when it has one, and so do we. The label of a step sits on the last token of (step + separator); every other
position is -100. Hard labels become 0/1 integers; soft labels keep their float value.

Truncation differs from TRL on purpose. TRL cut ``input_ids`` and ``labels`` together at ``max_length`` (and the
completion at ``max_completion_length``), even inside a step: a cut step lost its label, since the label sits on
its last token, but its leftover tokens stayed in the input unlabelled, and a row with no label left stayed in
the data. Here whole trailing steps that do not fit are dropped, so no unlabelled leftover tokens remain, and a
row with no label left (its prompt plus one step does not fit) is skipped. Both are counted and logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from .format import has_soft_labels

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100


@dataclass
class TruncationReport:
    """What truncation removed from a dataset."""

    rows: int = 0
    skipped_rows: int = 0
    dropped_steps: int = 0
    kept_steps: int = 0
    skipped_row_indices: list[int] = field(default_factory=list)

    def log(self, name: str = "dataset") -> None:
        if self.skipped_rows or self.dropped_steps:
            logger.warning(
                "%s: max_length dropped %d of %d steps and skipped %d of %d rows whose prompt and first step do not fit",
                name,
                self.dropped_steps,
                self.dropped_steps + self.kept_steps,
                self.skipped_rows,
                self.rows,
            )
        else:
            logger.info("%s: tokenized %d rows (%d steps), nothing truncated", name, self.rows, self.kept_steps)


def _label_value(label: Any, soft: bool) -> float | int:
    return float(label) if soft else int(label)


def build_example(
    prompt_ids: list[int],
    steps_ids: list[list[int]],
    labels: list[Any] | None,
    separator_ids: list[int],
    bos_token_id: int | None,
    max_length: int | None = None,
    train_on_last_step_only: bool = False,
    soft: bool = False,
) -> dict[str, Any]:
    """Assemble one example from already tokenized pieces (pure; no tokenizer needed).

    Returns ``input_ids``, ``labels`` (absent when ``labels`` is None, e.g. at inference), ``step_ends`` (the
    position carrying each kept step's label), ``step_index`` (per token: 0 for BOS and prompt, k for the tokens of
    step k and its separator) and ``num_steps`` / ``dropped_steps``. ``input_ids`` is empty when
    the row is skipped.
    """
    input_ids = ([bos_token_id] if bos_token_id is not None else []) + list(prompt_ids)
    step_ends: list[int] = []
    step_index = [0] * len(input_ids)
    for step_ids in steps_ids:
        piece = step_ids + separator_ids
        if max_length is not None and len(input_ids) + len(piece) > max_length:
            break
        input_ids.extend(piece)
        step_ends.append(len(input_ids) - 1)
        step_index.extend([len(step_ends)] * len(piece))
    if step_index:
        # The first token has nothing before it to be scored from; in a packed batch it must not join the previous
        # example's last step either (only reachable with an empty prompt and no BOS).
        step_index[0] = 0
    kept = len(step_ends)
    if kept == 0:
        empty = {"input_ids": [], "step_ends": [], "step_index": [], "labels": []}
        return {**empty, "num_steps": 0, "dropped_steps": len(steps_ids)}
    out: dict[str, Any] = {
        "input_ids": input_ids,
        "step_ends": step_ends,
        "step_index": step_index,
        "num_steps": kept,
        "dropped_steps": len(steps_ids) - kept,
    }
    if labels is not None:
        token_labels: list[float | int] = [IGNORE_INDEX] * len(input_ids)
        for i, end in enumerate(step_ends):
            # Training on the last step only means the last step of the *original* solution; if it was
            # truncated away the row keeps no label at all (it is then skipped by the caller).
            if train_on_last_step_only and i != len(steps_ids) - 1:
                continue
            token_labels[end] = _label_value(labels[i], soft)
        out["labels"] = token_labels
    return out


def tokenize_row(
    row: dict[str, Any],
    tokenizer,
    step_separator: str = "\n",
    max_length: int | None = None,
    train_on_last_step_only: bool = False,
    soft: bool | None = None,
) -> dict[str, Any]:
    """Tokenize one stepwise row (see the module docstring for the layout)."""
    texts = [row["prompt"], *row["completions"], step_separator]
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    labels = row.get("labels")
    if soft is None:
        soft = labels is not None and has_soft_labels(labels)
    return build_example(
        ids[0], ids[1:-1], labels, ids[-1], tokenizer.bos_token_id, max_length, train_on_last_step_only, soft
    )


def _tokenize_batch(
    batch, tokenizer, step_separator, max_length, train_on_last_step_only, soft, with_labels, with_step_index=False
):
    prompts, completions = batch["prompt"], batch["completions"]
    # One tokenizer call for the whole batch: the fast tokenizer parallelizes it in Rust.
    flat = list(prompts) + [step for steps in completions for step in steps]
    flat_ids = tokenizer(flat, add_special_tokens=False)["input_ids"]
    separator_ids = tokenizer(step_separator, add_special_tokens=False)["input_ids"]
    out: dict[str, list] = {"input_ids": [], "num_steps": [], "dropped_steps": []}
    if with_labels:
        out["labels"] = []
    if with_step_index:
        out["step_index"] = []
    cursor = len(prompts)
    for i, steps in enumerate(completions):
        steps_ids = flat_ids[cursor : cursor + len(steps)]
        cursor += len(steps)
        example = build_example(
            flat_ids[i],
            steps_ids,
            batch["labels"][i] if with_labels else None,
            separator_ids,
            tokenizer.bos_token_id,
            max_length,
            train_on_last_step_only,
            soft,
        )
        if with_labels and all(x == IGNORE_INDEX for x in example["labels"]):
            # Nothing left to learn from: skip the row.
            example.update(input_ids=[], labels=[], step_index=[], num_steps=0, dropped_steps=len(steps))
        for key in out:
            out[key].append(example[key])
    return out


def _output_features(dataset, keep_columns: tuple[str, ...], soft: bool, with_step_index: bool):
    import datasets

    int32 = datasets.Value("int32")
    return datasets.Features(
        {
            **{c: dataset.features[c] for c in keep_columns},
            "input_ids": datasets.Sequence(int32),
            "labels": datasets.Sequence(datasets.Value("float32" if soft else "int64")),
            **({"step_index": datasets.Sequence(int32)} if with_step_index else {}),
            "num_steps": int32,
            "dropped_steps": int32,
        }
    )


def tokenize_dataset(
    dataset,
    tokenizer,
    step_separator: str = "\n",
    max_length: int | None = None,
    train_on_last_step_only: bool = False,
    num_proc: int | None = None,
    batch_size: int = 256,
    name: str = "dataset",
    keep_columns: tuple[str, ...] = (),
    with_step_index: bool = False,
):
    """Tokenize a ``datasets.Dataset`` in the stepwise format; returns ``(dataset, TruncationReport)``.

    The output has ``input_ids``, ``labels`` (int64 for hard labels, float32 for soft ones), ``step_index`` if
    asked (see :func:`build_example`) and any ``keep_columns``. Rows that cannot keep a single labelled step are
    removed and counted.
    """
    soft = any(has_soft_labels(labels) for labels in dataset["labels"])
    features = _output_features(dataset, keep_columns, soft, with_step_index)
    tokenized = dataset.map(
        _tokenize_batch,
        batched=True,
        batch_size=batch_size,
        num_proc=num_proc,
        remove_columns=[c for c in dataset.column_names if c not in keep_columns],
        features=features,
        fn_kwargs={
            "tokenizer": tokenizer,
            "step_separator": step_separator,
            "max_length": max_length,
            "train_on_last_step_only": train_on_last_step_only,
            "soft": soft,
            "with_labels": True,
            "with_step_index": with_step_index,
        },
        desc=f"Tokenizing {name}",
    )
    counts = tokenized.select_columns(["num_steps", "dropped_steps"]).with_format("numpy")[:]
    kept = counts["num_steps"] > 0
    report = TruncationReport(
        rows=len(tokenized),
        skipped_rows=int((~kept).sum()),
        dropped_steps=int(counts["dropped_steps"].sum()),
        kept_steps=int(counts["num_steps"].sum()),
        skipped_row_indices=[int(i) for i in (~kept).nonzero()[0]],
    )
    if report.skipped_rows:
        tokenized = tokenized.select(kept.nonzero()[0])
    report.log(name)
    return tokenized.remove_columns(["num_steps", "dropped_steps"]), report
