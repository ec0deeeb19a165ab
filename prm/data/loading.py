"""Load step-labelled data from the hub or from local files through one code path."""

from __future__ import annotations

import logging
import os
from typing import Literal

from .converters import Layout, convert_dataset
from .format import validate_dataset

logger = logging.getLogger(__name__)

_FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}


def _builder_for(path: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in _FILE_BUILDERS:
        raise ValueError(f"Unsupported data file {path!r}: use one of {sorted(_FILE_BUILDERS)}")
    return _FILE_BUILDERS[suffix]


def load_raw_dataset(name_or_path: str, split: str | None = "train", config_name: str | None = None):
    """``datasets.load_dataset`` for a hub name, a local directory, or a single local file.

    A local directory of ``<split>.json[l]/.parquet`` files is read with one split per file, so the same
    ``split`` argument works for hub datasets and their local copies (e.g. ProcessBench's ``gsm8k.json``).
    """
    from datasets import load_dataset

    if os.path.isfile(name_or_path):
        return load_dataset(_builder_for(name_or_path), data_files=name_or_path, split="train")
    if os.path.isdir(name_or_path):
        files = {
            os.path.splitext(f)[0]: os.path.join(name_or_path, f)
            for f in sorted(os.listdir(name_or_path))
            if os.path.splitext(f)[1].lower() in _FILE_BUILDERS
        }
        if split is not None and split in files:
            return load_dataset(_builder_for(files[split]), data_files=files[split], split="train")
        if files and split is not None and split not in files and "train" not in files:
            raise ValueError(f"No split {split!r} in {name_or_path}; found {sorted(files)}")
    return load_dataset(name_or_path, config_name, split=split)


def load_stepwise_dataset(
    name_or_path: str,
    split: str | None = "train",
    config_name: str | None = None,
    layout: Layout | Literal["auto"] = "auto",
    num_proc: int | None = None,
    **converter_kwargs,
):
    """Load, convert to the stepwise format and validate. Raises on the first malformed row."""
    dataset = load_raw_dataset(name_or_path, split=split, config_name=config_name)
    dataset = convert_dataset(dataset, layout=layout, num_proc=num_proc, **converter_kwargs)
    validate_dataset(dataset)
    return dataset
