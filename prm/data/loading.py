"""Load step-labelled data from the hub or from local files through one code path."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable

from .converters import LayoutOrAuto, convert_dataset
from .format import validate_dataset

logger = logging.getLogger(__name__)

_FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}


def _builder_for(path: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in _FILE_BUILDERS:
        raise ValueError(f"Unsupported data file {path!r}: use one of {sorted(_FILE_BUILDERS)}")
    return _FILE_BUILDERS[suffix]


def check_json_file(path: str) -> list[dict]:
    """The rows of a local JSON (array) / JSON Lines file, or a ValueError naming the file and the line of the first
    thing ``datasets`` cannot read as a row (invalid JSON, a line that is not an object)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg != "Extra data":  # a single JSON document that is broken
            raise ValueError(f"{path}, line {err.lineno}: not valid JSON ({err.msg}, column {err.colno})") from None
    else:
        rows = data if isinstance(data, list) else [data]
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise ValueError(f"{path}, row {i}: expected a JSON object per row, got {type(row).__name__}")
        return rows
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):  # JSON Lines
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}, line {lineno}: not valid JSON ({err.msg}, column {err.colno})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}, line {lineno}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    return rows


def load_local_file(path: str, split: str = "train", check_rows: Callable[[list[dict], str], None] | None = None):
    """One local data file as a ``datasets.Dataset``. When ``datasets`` cannot read it, the error names the file
    and, for JSON, the line (malformed JSON) or the row ``check_rows(rows, path)`` rejects (e.g. a field whose type
    differs from the other rows'); the check costs nothing for files that load."""
    from datasets import load_dataset

    builder = _builder_for(path)
    try:
        return load_dataset(builder, data_files={split: path}, split=split)
    except Exception as err:
        if builder == "json":
            rows = check_json_file(path)
            if check_rows is not None:
                check_rows(rows, path)
        reason = " | ".join(str(err).splitlines()[:1]) or type(err).__name__
        raise ValueError(f"{path}: cannot be read as a table of rows ({type(err).__name__}: {reason})") from err


def load_raw_dataset(
    name_or_path: str,
    split: str | None = "train",
    config_name: str | None = None,
    check_rows: Callable[[list[dict], str], None] | None = None,
):
    """``datasets.load_dataset`` for a hub name, a local directory, or a single local file.

    A local directory of ``<split>.json[l]/.parquet`` files is read with one split per file, so the same
    ``split`` argument works for hub datasets and their local copies (e.g. ProcessBench's ``gsm8k.json``).
    """
    from datasets import load_dataset

    if os.path.isfile(name_or_path):
        return load_local_file(name_or_path, check_rows=check_rows)
    if os.path.isdir(name_or_path):
        files = {
            os.path.splitext(f)[0]: os.path.join(name_or_path, f)
            for f in sorted(os.listdir(name_or_path))
            if os.path.splitext(f)[1].lower() in _FILE_BUILDERS
        }
        if split is not None and split in files:
            return load_local_file(files[split], check_rows=check_rows)
        if files and split is not None and split not in files and "train" not in files:
            raise ValueError(f"No split {split!r} in {name_or_path}; found {sorted(files)}")
    return load_dataset(name_or_path, config_name, split=split)


def load_stepwise_dataset(
    name_or_path: str,
    split: str | None = "train",
    config_name: str | None = None,
    layout: LayoutOrAuto = "auto",
    num_proc: int | None = None,
    **converter_kwargs,
):
    """Load, convert to the stepwise format and validate. Raises on the first malformed row."""
    dataset = load_raw_dataset(name_or_path, split=split, config_name=config_name)
    dataset = convert_dataset(dataset, layout=layout, num_proc=num_proc, **converter_kwargs)
    validate_dataset(dataset)
    return dataset
