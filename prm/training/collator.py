"""Batch tokenized stepwise examples: padded rows, or one padding-free row of concatenated sequences."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from prm.data import IGNORE_INDEX


def _labels_dtype(features: list[dict[str, Any]]) -> torch.dtype:
    # Soft-label datasets are stored as float32 (see prm.data.tokenize_dataset); keep them float.
    for feature in features:
        for value in feature["labels"]:
            if value != IGNORE_INDEX:
                return torch.float32 if isinstance(value, float) else torch.long
    return torch.long


@dataclass
class PRMDataCollator:
    """Collate ``{"input_ids", "labels"}`` examples, and ``step_index`` when they have it (other keys are ignored).

    Padded mode (default): right-pad to the longest example (rounded up to ``pad_to_multiple_of``) with
    ``pad_token_id`` and label -100, plus an ``attention_mask``.

    Padding-free mode: concatenate the whole batch into a single row with ``position_ids`` restarting at 0 for
    each example and no ``attention_mask``; transformers' mask utilities then build a block-diagonal causal mask
    (or the flash-attention varlen path) from the position restarts, so sequences do not attend to each other.
    """

    pad_token_id: int
    padding_free: bool = False
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("Cannot collate an empty batch")
        dtype = _labels_dtype(features)
        if self.padding_free:
            return self._padding_free(features, dtype)
        return self._padded(features, dtype)

    def _padded(self, features: list[dict[str, Any]], dtype: torch.dtype) -> dict[str, torch.Tensor]:
        lengths = [len(f["input_ids"]) for f in features]
        width = max(lengths)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = torch.full((len(features), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(features), width), IGNORE_INDEX, dtype=dtype)
        attention_mask = torch.zeros((len(features), width), dtype=torch.long)
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
        if "step_index" in features[0]:
            batch["step_index"] = torch.zeros((len(features), width), dtype=torch.long)
        for row, (feature, length) in enumerate(zip(features, lengths)):
            input_ids[row, :length] = torch.as_tensor(feature["input_ids"], dtype=torch.long)
            labels[row, :length] = torch.as_tensor(feature["labels"], dtype=dtype)
            attention_mask[row, :length] = 1
            if "step_index" in batch:
                batch["step_index"][row, :length] = torch.as_tensor(feature["step_index"], dtype=torch.long)
        return batch

    def _padding_free(self, features: list[dict[str, Any]], dtype: torch.dtype) -> dict[str, torch.Tensor]:
        input_ids = torch.cat([torch.as_tensor(f["input_ids"], dtype=torch.long) for f in features])
        labels = torch.cat([torch.as_tensor(f["labels"], dtype=dtype) for f in features])
        position_ids = torch.cat([torch.arange(len(f["input_ids"])) for f in features])
        batch = {"input_ids": input_ids[None], "position_ids": position_ids[None], "labels": labels[None]}
        if "step_index" in features[0]:
            # Each example's first token has index 0 (prm.data.build_example), so neighbouring steps stay apart.
            step_index = torch.cat([torch.as_tensor(f["step_index"], dtype=torch.long) for f in features])
            batch["step_index"] = step_index[None]
        return batch
