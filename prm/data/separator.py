"""The step separator: how it is typed on a shell, and how it travels with a trained model."""

from __future__ import annotations

import codecs
import json
import os

DEFAULT_SEPARATOR = "\n"
# Written into the model's config.json so evaluation and search reuse the training separator.
CONFIG_KEY = "step_separator"


def decode_separator(separator: str) -> str:
    r"""Turn shell-typed escapes into characters: ``\n`` (backslash, n) becomes a newline.

    A separator that already contains real control characters is returned unchanged.
    """
    if "\\" not in separator:
        return separator
    return codecs.decode(separator, "unicode_escape")


def save_separator(config, separator: str) -> None:
    """Record the separator on a ``PretrainedConfig`` so ``save_pretrained`` persists it."""
    setattr(config, CONFIG_KEY, separator)


def read_separator(model_path_or_config, default: str = DEFAULT_SEPARATOR) -> str:
    """The separator a model was trained with, or ``default`` (TRL's "\\n") for models that did not record one."""
    config = model_path_or_config
    if isinstance(config, (str, os.PathLike)):
        config_file = os.path.join(config, "config.json")
        if os.path.isfile(config_file):
            with open(config_file, encoding="utf-8") as f:
                return json.load(f).get(CONFIG_KEY, default)
        from transformers import AutoConfig  # a hub name: let transformers resolve and cache it

        config = AutoConfig.from_pretrained(config)
    return getattr(config, CONFIG_KEY, None) or default
