"""Prompt formatting shared by every backend: the model's chat template, one from a file, or plain text."""

from __future__ import annotations

import logging
from pathlib import Path

from prm.data.tokenizer import DEFAULT_DATE_STRING, render_chat

logger = logging.getLogger(__name__)


def read_chat_template(path: str | Path) -> str:
    """The Jinja source of a chat template file (the format of ``tokenizer.chat_template``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"chat_template_path {str(path)!r} is not a file")
    return path.read_text(encoding="utf-8")


def plain_prompt(problem: str, system_prompt: str | None = None) -> str:
    """Fallback for tokenizers without a chat template (base models, tiny test models): the system prompt and the
    problem, each followed by a blank line, so the first step starts right after them."""
    return f"{system_prompt}\n\n{problem}\n\n" if system_prompt else f"{problem}\n\n"


def format_chat_prompt(
    tokenizer,
    problem: str,
    system_prompt: str | None = None,
    chat_template: str | None = None,
    date_string: str = DEFAULT_DATE_STRING,
) -> str:
    """The text before the first step: ``chat_template`` (if given) or the tokenizer's own template, rendered with
    ``add_generation_prompt=True`` and the fixed ``date_string`` (never today's date); :func:`plain_prompt` when
    neither exists."""
    template = chat_template or getattr(tokenizer, "chat_template", None)
    if not template:
        return plain_prompt(problem, system_prompt)
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": problem})
    return render_chat(tokenizer, messages, date_string, chat_template=template, add_generation_prompt=True)


def encode_prompt(tokenizer, prompt: str) -> list[int]:
    """Token ids of a formatted prompt, with the BOS token exactly once (chat templates often write it already)."""
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    if bos is not None and (not ids or ids[0] != bos):
        ids = [bos, *ids]
    return ids


def count_prompt_tokens(problems: list[str], settings: dict) -> list[int]:
    """Tokens of each problem's prompt as a run formatted it, from the run's ``search_config.json`` settings
    (generator tokenizer, chat template file, system prompt)."""
    from prm.data import load_tokenizer

    generator, search = settings.get("generator") or {}, settings.get("search") or {}
    name = generator.get("generator_tokenizer_name_or_path") or generator.get("generator_model_name_or_path")
    if not name:
        raise ValueError("search_config.json names no generator tokenizer")
    tokenizer = load_tokenizer(name, trust_remote_code=bool(generator.get("generator_trust_remote_code")))
    template = generator.get("chat_template_path")
    template = read_chat_template(template) if template else None
    system_prompt = search.get("system_prompt")
    return [len(encode_prompt(tokenizer, format_chat_prompt(tokenizer, p, system_prompt, template))) for p in problems]
