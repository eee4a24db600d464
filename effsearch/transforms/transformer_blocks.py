"""Structural surgery on BERT-style encoders: drop layers, remove attention heads and FFN neurons.

Supported: encoders whose layers hold ``attention.self.{query,key,value}``,
``attention.output.dense``, ``intermediate.dense`` and ``output.dense`` (BERT, RoBERTa,
MiniLM, ELECTRA, XLM-R in transformers 5). Their attention reshapes with ``-1`` heads, so
slicing the projections is enough; the head count attributes are updated for consistency.
Importance is data-free: the L1 norm of the weights that read from and write to a head or
neuron. Removed rows and columns are gone, so size, FLOPs and latency all shrink.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from effsearch.errors import TaskError

QUERY, KEY, VALUE = "attention.self.query", "attention.self.key", "attention.self.value"
ATTN_OUT, FFN_IN, FFN_OUT = "attention.output.dense", "intermediate.dense", "output.dense"
_REQUIRED = (QUERY, KEY, VALUE, ATTN_OUT, FFN_IN, FFN_OUT)


@dataclass(frozen=True)
class Encoder:
    """Where a model keeps its encoder layers (a ModuleList) and its config."""

    layers: nn.ModuleList
    path: str  # dotted name of the ModuleList inside the model

    def __len__(self) -> int:
        return len(self.layers)


def find_encoder(model: nn.Module) -> Encoder:
    """The model's list of BERT-style layers; TaskError naming what is missing otherwise."""
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > 0:
            first = dict(module[0].named_modules())
            if all(isinstance(first.get(part), nn.Linear) for part in _REQUIRED):
                return Encoder(module, name)
    raise TaskError(
        f"{type(model).__name__} has no BERT-style encoder layers (with {', '.join(_REQUIRED)});"
        " structured pruning and layer dropping support BERT-family encoders"
    )


def drop_top_layers(model: nn.Module, count: int) -> int:
    """Remove the top ``count`` encoder layers (keeping at least one); return how many remain."""
    encoder = find_encoder(model)
    keep = max(1, len(encoder) - count)
    del encoder.layers[keep:]
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "num_hidden_layers"):
        config.num_hidden_layers = keep
    return keep


def prune_heads(model: nn.Module, fraction: float, head_size: int) -> int:
    """Remove ``fraction`` of the attention heads of every layer (lowest L1 first).

    Returns the number of heads removed in all. ``head_size`` is hidden size / heads.
    """
    removed = 0
    for layer in find_encoder(model).layers:
        parts = dict(layer.named_modules())
        query, key, value = parts[QUERY], parts[KEY], parts[VALUE]
        out = parts[ATTN_OUT]
        heads = query.out_features // head_size
        drop = min(heads - 1, round(fraction * heads))
        if drop <= 0:
            continue
        score = sum(
            m.weight.detach().abs().reshape(heads, head_size, -1).sum(dim=(1, 2))
            for m in (query, key, value)
        ) + out.weight.detach().abs().reshape(out.out_features, heads, head_size).sum(dim=(0, 2))
        kept_heads = torch.sort(torch.topk(score, heads - drop).indices).values
        offsets = torch.arange(head_size, device=kept_heads.device)
        rows = (kept_heads[:, None] * head_size + offsets).reshape(-1)
        for module in (query, key, value):
            _keep_rows(module, rows)
        _keep_columns(out, rows)
        attention = parts["attention.self"]
        if hasattr(attention, "num_attention_heads"):
            attention.num_attention_heads = heads - drop
        if hasattr(attention, "all_head_size"):
            attention.all_head_size = (heads - drop) * head_size
        removed += drop
    return removed


def prune_ffn(model: nn.Module, fraction: float) -> int:
    """Remove ``fraction`` of every layer's FFN neurons (lowest L1 first); return how many."""
    removed = 0
    for layer in find_encoder(model).layers:
        parts = dict(layer.named_modules())
        ffn_in, ffn_out = parts[FFN_IN], parts[FFN_OUT]
        width = ffn_in.out_features
        drop = min(width - 1, round(fraction * width))
        if drop <= 0:
            continue
        score = ffn_in.weight.detach().abs().sum(dim=1) + ffn_out.weight.detach().abs().sum(dim=0)
        kept = torch.sort(torch.topk(score, width - drop).indices).values
        _keep_rows(ffn_in, kept)
        _keep_columns(ffn_out, kept)
        removed += drop
    return removed


def attention_modules(model: nn.Module, layer_indices: list[int], with_mlp: bool) -> list[str]:
    """Full names of the Linear modules PEFT adapts in the given layers."""
    encoder = find_encoder(model)
    parts = [QUERY, KEY, VALUE, ATTN_OUT] + ([FFN_IN, FFN_OUT] if with_mlp else [])
    return [f"{encoder.path}.{i}.{part}" for i in layer_indices for part in parts]


def _keep_rows(linear: nn.Linear, rows: torch.Tensor) -> None:
    linear.weight = nn.Parameter(linear.weight.detach()[rows].clone())
    if linear.bias is not None:
        linear.bias = nn.Parameter(linear.bias.detach()[rows].clone())
    linear.out_features = len(rows)


def _keep_columns(linear: nn.Linear, columns: torch.Tensor) -> None:
    linear.weight = nn.Parameter(linear.weight.detach()[:, columns].clone())
    linear.in_features = len(columns)
