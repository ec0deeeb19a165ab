"""Run a decoder's last layer only where a step is scored.

A causal model's output at position p depends on the previous layers at positions <= p, so the last layer only
needs its keys and values over the whole sequence; queries, attention output, MLP and final norm are needed at
the scored positions alone (a handful per solution). This saves roughly one layer in ``num_layers`` of the
compute: a few percent on a 28-layer PRM, about half on the tiny models of the tests and benchmarks.

Only the Llama-family decoder layout is handled (Llama, Qwen2, Mistral without sliding windows: pre-norm,
rotary q/k, grouped-query attention, residual MLP); anything else returns None and runs the stock forward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SUPPORTED_MODEL_TYPES = {"llama", "qwen2", "mistral"}


class _LastLayerInputs(Exception):  # noqa: N818 (control flow, not an error)
    def __init__(self, hidden: torch.Tensor, position_embeddings):
        super().__init__()
        self.hidden = hidden
        self.position_embeddings = position_embeddings


def supports_last_layer_at_positions(body) -> bool:
    config = getattr(body, "config", None)
    layers = getattr(body, "layers", None)
    if config is None or getattr(config, "model_type", None) not in SUPPORTED_MODEL_TYPES or not layers:
        return False
    if not hasattr(body, "norm"):
        return False
    if config.model_type == "mistral" and getattr(config, "sliding_window", None) is not None:
        return False
    layer = layers[-1]
    attn = getattr(layer, "self_attn", None)
    needed = ("q_proj", "k_proj", "v_proj", "o_proj", "head_dim", "num_key_value_groups", "scaling")
    if attn is None or not all(hasattr(attn, n) for n in needed):
        return False
    if getattr(attn, "sliding_window", None) is not None or hasattr(attn, "q_norm"):
        return False
    return all(hasattr(layer, n) for n in ("input_layernorm", "post_attention_layernorm", "mlp"))


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _last_layer_inputs(body, input_ids: torch.Tensor, **kwargs) -> _LastLayerInputs:
    """Run the body up to its last layer and return that layer's inputs."""

    def stop(module, args, kw):
        hidden = args[0] if args else kw["hidden_states"]
        raise _LastLayerInputs(hidden, kw.get("position_embeddings"))

    handle = body.layers[-1].register_forward_pre_hook(stop, with_kwargs=True)
    try:
        body(input_ids=input_ids, **kwargs)
    except _LastLayerInputs as captured:
        return captured
    finally:
        handle.remove()
    raise RuntimeError("The last decoder layer was never called")


def last_layer_at_positions(
    body, input_ids: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor, **kwargs
) -> torch.Tensor:
    """Final hidden states (after the final norm) at ``(rows[i], positions[i])``, for a right-padded batch.

    ``rows`` must be non-decreasing and positions increasing within a row (the order verifiers build them in).
    """
    captured = _last_layer_inputs(body, input_ids, **kwargs)
    hidden = captured.hidden
    if captured.position_embeddings is None:
        raise RuntimeError("The last decoder layer received no rotary position embeddings")
    cos, sin = captured.position_embeddings
    layer = body.layers[-1]
    attn = layer.self_attn
    batch, length, _ = hidden.shape
    head_dim = attn.head_dim

    # Queries per row, padded to the row with the most scored positions.
    counts = torch.bincount(rows, minlength=batch)
    width = int(counts.max())
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(rows.numel(), device=rows.device) - starts[rows]
    query_pos = torch.zeros(batch, width, dtype=torch.long, device=rows.device)
    query_pos[rows, slot] = positions
    batch_idx = torch.arange(batch, device=rows.device)[:, None]

    x = layer.input_layernorm(hidden)
    keys = attn.k_proj(x).view(batch, length, -1, head_dim).transpose(1, 2)
    values = attn.v_proj(x).view(batch, length, -1, head_dim).transpose(1, 2)
    queries = attn.q_proj(x[batch_idx, query_pos]).view(batch, width, -1, head_dim).transpose(1, 2)
    cos, sin = cos.expand(batch, -1, -1), sin.expand(batch, -1, -1)
    keys = keys * cos.unsqueeze(1) + _rotate_half(keys) * sin.unsqueeze(1)
    cos_q, sin_q = cos[batch_idx, query_pos].unsqueeze(1), sin[batch_idx, query_pos].unsqueeze(1)
    queries = queries * cos_q + _rotate_half(queries) * sin_q
    # Causal: a query at position p sees keys 0..p (padding queries sit at 0 and are discarded).
    mask = torch.arange(length, device=rows.device)[None, None, :] <= query_pos[:, :, None]
    out = F.scaled_dot_product_attention(
        queries,
        keys,
        values,
        attn_mask=mask.unsqueeze(1),
        scale=attn.scaling,
        enable_gqa=attn.num_key_value_groups > 1,
    )
    out = attn.o_proj(out.transpose(1, 2).reshape(batch, width, -1))

    h = hidden[batch_idx, query_pos] + out
    h = h + layer.mlp(layer.post_attention_layernorm(h))
    return body.norm(h[rows, slot])


def hidden_at_positions(body, input_ids: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor, **kwargs):
    """Final hidden states at the scored positions, through the shortcut above when the body allows it."""
    if supports_last_layer_at_positions(body):
        return last_layer_at_positions(body, input_ids, rows, positions, **kwargs)
    return body(input_ids=input_ids, **kwargs).last_hidden_state[rows, positions]
