"""Growing and freezing a pretrained model's decoder layers before PRM training.

A verifier built on a policy can keep the policy's layers frozen, so it keeps computing what the policy predicts,
and train a few new layers on top that compare those predictions with what the solution says. Frozen layers also
cost no backward pass. ``PRMScriptArguments.add_layers`` and ``freeze_layers`` reach these from a recipe.
"""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)


def grow_config(config, num_new_layers: int) -> None:
    """Raise ``config.num_hidden_layers`` by ``num_new_layers``; loading pretrained weights with this config leaves
    the new top layers missing, so they get the model's own random initialisation."""
    if num_new_layers < 0:
        raise ValueError(f"add_layers must be 0 or more, got {num_new_layers}")
    old = config.num_hidden_layers
    config.num_hidden_layers = old + num_new_layers
    # Configs with per-layer attention kinds (Qwen2, Gemma, ...) check that the list covers every layer; the new
    # layers repeat the kind of the top one.
    layer_types = getattr(config, "layer_types", None)
    if layer_types:
        config.layer_types = list(layer_types) + [layer_types[-1]] * num_new_layers


def decoder_layers(model) -> torch.nn.ModuleList:
    """The stack of transformer blocks: the first ``ModuleList`` with one entry per hidden layer."""
    count = model.config.num_hidden_layers
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == count:
            return module
    raise ValueError(f"{type(model).__name__} has no list of {count} decoder layers to freeze")


def freeze_bottom_layers(model, num_layers: int) -> int:
    """Freeze the input embeddings and the first ``num_layers`` decoder layers; returns the trainable parameter
    count. Nothing below the first trainable layer then needs gradients, so backward stops there."""
    layers = decoder_layers(model)
    if not 0 < num_layers <= len(layers):
        raise ValueError(f"freeze_layers must be between 1 and the model's {len(layers)} layers, got {num_layers}")
    model.get_input_embeddings().requires_grad_(False)
    for layer in layers[:num_layers]:
        layer.requires_grad_(False)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    logger.info(
        "Froze the embeddings and %d of %d decoder layers: %d of %d parameters train",
        num_layers,
        len(layers),
        trainable,
        total,
    )
    return trainable
