"""Load a checkpoint's tokenizer exactly as it was saved; render chat templates without reading the clock."""

from __future__ import annotations

from typing import Any

# Llama 3.1 templates print "Today Date: 26 Jul 2024" when no date is given; Llama 3.2/3.3 templates print today's
# date (``strftime_now``), so prompts, and the samples drawn from them, would change from day to day.
DEFAULT_DATE_STRING = "26 Jul 2024"


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False, revision: str | None = None):
    """The tokenizer saved with a checkpoint (local directory or hub name), exactly as it was saved.

    ``AutoTokenizer`` in transformers 5 swaps in the model type's own tokenizer class for some model types (qwen2
    among them) even when the checkpoint saved a plain tokenizers-backed one. That silently changes token ids, e.g.
    for a PRM built on a Qwen2 config with the DeepSeek tokenizer, and then training, evaluation and search would
    disagree on the layout. A checkpoint that declares the plain backend is therefore loaded with that backend.
    Every loader in prmkit goes through this function.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast
    from transformers.models.auto.tokenization_auto import get_tokenizer_config

    declared = get_tokenizer_config(name_or_path, revision=revision).get("tokenizer_class")
    if declared in ("TokenizersBackend", "PreTrainedTokenizerFast"):
        return PreTrainedTokenizerFast.from_pretrained(name_or_path, revision=revision)
    return AutoTokenizer.from_pretrained(name_or_path, revision=revision, trust_remote_code=trust_remote_code)


def pad_token_id(tokenizer) -> int:
    """The id that pads a batch: the tokenizer's pad token, else its EOS token, else 0.

    Padding is masked out of attention and loss, so any id is correct; the fallback order only keeps the id inside
    the vocabulary of tokenizers that define no pad token (Llama's, for one)."""
    pad = getattr(tokenizer, "pad_token_id", None)
    if pad is None:
        pad = getattr(tokenizer, "eos_token_id", None)
    return 0 if pad is None else pad


def render_chat(
    tokenizer, messages: list[dict[str, str]], date_string: str = DEFAULT_DATE_STRING, **kwargs: Any
) -> str:
    """``tokenizer.apply_chat_template(messages, tokenize=False, **kwargs)`` with ``date_string`` pinned.

    Templates that print a date read the ``date_string`` variable when it is defined and only fall back to the
    clock otherwise, so the rendered text never depends on the day it runs. Templates without a date ignore it.
    """
    return tokenizer.apply_chat_template(messages, tokenize=False, date_string=date_string, **kwargs)
