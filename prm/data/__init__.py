"""The stepwise data layer: format, converters, loading and the one tokenize function."""

from .converters import (
    DEFAULT_NEUTRAL_LABEL,
    convert_dataset,
    detect_layout,
    math_shepherd_row,
    prm800k_row,
    processbench_row,
)
from .format import StepwiseFormatError, has_soft_labels, split_steps, validate_dataset, validate_rows
from .loading import check_json_file, load_local_file, load_raw_dataset, load_stepwise_dataset
from .separator import DEFAULT_SEPARATOR, decode_separator, read_separator, save_separator
from .tokenize import IGNORE_INDEX, TruncationReport, build_example, tokenize_dataset, tokenize_row
from .tokenizer import DEFAULT_DATE_STRING, load_tokenizer, render_chat

__all__ = [
    "DEFAULT_DATE_STRING",
    "DEFAULT_NEUTRAL_LABEL",
    "DEFAULT_SEPARATOR",
    "IGNORE_INDEX",
    "StepwiseFormatError",
    "TruncationReport",
    "build_example",
    "check_json_file",
    "convert_dataset",
    "decode_separator",
    "detect_layout",
    "has_soft_labels",
    "load_local_file",
    "load_raw_dataset",
    "load_stepwise_dataset",
    "load_tokenizer",
    "math_shepherd_row",
    "prm800k_row",
    "processbench_row",
    "read_separator",
    "render_chat",
    "save_separator",
    "split_steps",
    "tokenize_dataset",
    "tokenize_row",
    "validate_dataset",
    "validate_rows",
]
