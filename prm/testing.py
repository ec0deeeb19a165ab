"""Tiny models and tokenizers built from config, for offline tests and CPU benchmarks."""

from __future__ import annotations

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, PreTrainedTokenizerFast, Qwen2Config

SPECIAL = ["<pad>", "<bos>", "<eos>", "<unk>"]
# Multi-character tags used by step-tag and Qwen-PRM style verifiers stay single tokens.
TAGS = ["ки", "<extra_0>"]


def build_tiny_tokenizer(bos: bool = True) -> PreTrainedTokenizerFast:
    """A byte-level tokenizer without merges: every byte is one token (262 tokens in all).

    Byte-level on purpose: transformers 5 reloads any tokenizer saved beside a qwen2 ``config.json`` as
    ``Qwen2Tokenizer``, which re-applies byte-level pre-tokenization. A byte-level vocabulary survives that
    round trip unchanged; a plain character vocabulary silently loses newlines.
    """
    vocab = {token: i for i, token in enumerate(SPECIAL + sorted(pre_tokenizers.ByteLevel.alphabet()))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_tokens([AddedToken(tag, normalized=False) for tag in TAGS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<bos>" if bos else None,
        eos_token="<eos>",
        unk_token="<unk>",
    )


def tiny_qwen2_config(vocab_size: int, hidden_size: int = 64, num_layers: int = 2, **kwargs) -> Qwen2Config:
    return Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        **{"tie_word_embeddings": False, **kwargs},
    )


def tiny_llama_config(
    vocab_size: int,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
    **kwargs,
) -> LlamaConfig:
    """A tiny llama model, whose saved tokenizer reloads as it was saved (beside a qwen2 config, transformers 5
    reloads any tokenizer as its own Qwen2Tokenizer)."""
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads,
        max_position_embeddings=2048,
        **kwargs,
    )
