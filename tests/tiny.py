"""Tiny models and tokenizers built from config, for offline tests."""

from __future__ import annotations

import string

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen2Config

SPECIAL = ["<pad>", "<bos>", "<eos>", "<unk>"]
VOCAB = SPECIAL + list(string.printable) + ["ки", "<extra_0>"]


def build_tiny_tokenizer(bos: bool = True) -> PreTrainedTokenizerFast:
    """A character-level tokenizer: every printable character is one token."""
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(VOCAB))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    tok.decoder = decoders.Fuse()
    # Multi-character tags used by step-tag and Qwen-PRM style verifiers stay single tokens.
    tok.add_tokens([AddedToken("ки", normalized=False), AddedToken("<extra_0>", normalized=False)])
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
        tie_word_embeddings=False,
        **kwargs,
    )
