"""Structural surgery by role on any architecture a :class:`~effsearch.models.layouts.Layout`
describes: drop top blocks, remove attention heads (whole key-value groups under grouped-query
attention) and FFN neurons, name PEFT targets.

Removed rows and columns are gone, so size, FLOPs and latency shrink. Importance is data-free:
the L1 norm of the weights that read from and write to a head, group or neuron. The same
fraction is removed in every block, so the model's config stays uniform and is updated to match
(heads, key-value heads, FFN width, layers; ``head_dim`` where the config has it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from effsearch.errors import TaskError
from effsearch.models.layouts import Layout

HEAD_COUNT_ATTRIBUTES = ("num_heads", "num_attention_heads", "n_heads", "n_head")
"""Attributes an attention module may keep its (query) head count in."""
KV_COUNT_ATTRIBUTES = ("num_key_value_heads", "num_kv_heads")


@dataclass(frozen=True)
class Blocks:
    """A model's block list and its dotted name inside the model."""

    layers: nn.ModuleList
    path: str

    def __len__(self) -> int:
        return len(self.layers)


def find_blocks(model: nn.Module, layout: Layout) -> Blocks:
    """The model's blocks (also inside a PEFT or task-head wrapper); TaskError if absent."""
    for name, module in model.named_modules():
        found = any(name == path or name.endswith(f".{path}") for path in layout.blocks)
        if found and isinstance(module, nn.ModuleList) and len(module) > 0:
            return Blocks(module, name)
    raise TaskError(
        f"{type(model).__name__} has no {layout.family} blocks at {' or '.join(layout.blocks)}"
    )


def part(model: nn.Module, layout: Layout, role: str) -> list[str]:
    """Full names of the modules of a role outside the blocks: ``embeddings`` or ``head``."""
    endings = layout.embeddings if role == "embeddings" else (layout.head,) if layout.head else ()
    if role not in ("embeddings", "head"):
        raise ValueError(f"role must be embeddings or head (got {role!r})")
    return [
        name
        for name, _ in model.named_modules()
        if any(name == e or name.endswith(f".{e}") for e in endings if e)
    ]


def drop_top_layers(model: nn.Module, layout: Layout, count: int) -> int:
    """Remove the top ``count`` blocks (keeping at least one); return how many remain."""
    blocks = find_blocks(model, layout)
    keep = max(1, len(blocks) - count)
    del blocks.layers[keep:]
    config = getattr(model, "config", None)
    if config is not None:
        setattr(config, layout.config_layers, keep)
        layer_types = getattr(config, "layer_types", None)
        if isinstance(layer_types, list):
            config.layer_types = layer_types[:keep]
    return keep


def head_counts(model: nn.Module, layout: Layout) -> tuple[int, int, int]:
    """``(heads, key-value heads, head size)`` of the model's blocks, from its config."""
    config = model.config
    heads = int(getattr(config, layout.config_heads))
    kv_heads = (
        int(getattr(config, layout.config_kv_heads, None) or heads)
        if (layout.config_kv_heads)
        else heads
    )
    first = find_blocks(model, layout).layers[0]
    query = first.get_submodule(layout.fused_qkv or layout.query or "")
    width = _out_width(query, layout) // (3 if layout.fused_qkv else 1)
    return heads, kv_heads, width // heads


def prune_heads(model: nn.Module, layout: Layout, fraction: float) -> int:
    """Remove ``fraction`` of every block's attention heads (lowest L1 first); return how many
    query heads were removed in all.

    Under grouped-query attention a key-value head and the query heads that read it go
    together, so the grouping stays valid; with as many key-value heads as query heads (or
    none declared) that is one head at a time.
    """
    heads, kv_heads, size = head_counts(model, layout)
    group = heads // kv_heads
    drop = min(kv_heads - 1, round(fraction * kv_heads))
    if drop <= 0:
        return 0
    blocks = find_blocks(model, layout)
    for block in blocks.layers:
        score = _group_scores(block, layout, heads, kv_heads, size)
        kept = torch.sort(torch.topk(score, kv_heads - drop).indices).values
        offsets = torch.arange(size)
        kv_rows = (kept[:, None] * size + offsets).reshape(-1)
        q_heads = (kept[:, None] * group + torch.arange(group)).reshape(-1)
        q_rows = (q_heads[:, None] * size + offsets).reshape(-1)
        if layout.fused_qkv:
            width = heads * size
            fused = block.get_submodule(layout.fused_qkv)
            _keep_outputs(fused, torch.cat([q_rows, width + kv_rows, 2 * width + kv_rows]), layout)
        else:
            assert layout.query and layout.key and layout.value
            _keep_outputs(block.get_submodule(layout.query), q_rows, layout)
            _keep_outputs(block.get_submodule(layout.key), kv_rows, layout)
            _keep_outputs(block.get_submodule(layout.value), kv_rows, layout)
        _keep_inputs(block.get_submodule(layout.attn_out), q_rows, layout)
        _set_head_counts(block.get_submodule(layout.attention), len(q_heads), len(kept), size)
    config = getattr(model, "config", None)
    if config is not None:
        setattr(config, layout.config_heads, (kv_heads - drop) * group)
        if layout.config_kv_heads:
            setattr(config, layout.config_kv_heads, kv_heads - drop)
        if layout.config_keeps_head_size:
            config.head_dim = size
    return drop * group * len(blocks)


def restore_head_count(model: nn.Module, layout: Layout, heads: int) -> int:
    """Give every block ``heads`` attention heads again by appending zero heads (zero query,
    key and value rows and biases, zero output columns: each adds exactly nothing), so a
    head-pruned model's config can say what its original architecture says (BERT derives the
    head size from ``hidden_size / num_attention_heads``). Returns the heads added per block."""
    now, kv_now, size = head_counts(model, layout)
    if now >= heads:
        return 0
    if layout.fused_qkv or kv_now != now or not (layout.query and layout.key and layout.value):
        raise TaskError(
            f"{layout.family}: only separate query/key/value projections without grouped "
            "key-value heads can be given their pruned heads back"
        )
    rows = heads * size
    for block in find_blocks(model, layout).layers:
        for path in (layout.query, layout.key, layout.value):
            _pad_outputs(block.get_submodule(path), rows, layout)
        _pad_inputs(block.get_submodule(layout.attn_out), rows, layout)
        _set_head_counts(block.get_submodule(layout.attention), heads, heads, size)
    setattr(model.config, layout.config_heads, heads)
    return heads - now


def prune_ffn(model: nn.Module, layout: Layout, fraction: float) -> int:
    """Remove ``fraction`` of every block's FFN neurons (lowest L1 first); return how many."""
    removed = width = 0
    for block in find_blocks(model, layout).layers:
        inputs = [block.get_submodule(p) for p in layout.ffn_in]
        output = block.get_submodule(layout.ffn_out)
        width = _out_width(inputs[0], layout)
        drop = min(width - 1, round(fraction * width))
        if drop <= 0:
            return 0
        score = sum(_weight(m, layout).abs().sum(dim=1) for m in inputs) + _weight(
            output, layout
        ).abs().sum(dim=0)
        kept = torch.sort(torch.topk(score, width - drop).indices).values
        for module in inputs:
            _keep_outputs(module, kept, layout)
        _keep_inputs(output, kept, layout)
        removed += drop
        width -= drop
    config = getattr(model, "config", None)
    if config is not None and removed:
        setattr(config, layout.config_ffn, width)
    return removed


def peft_targets(
    model: nn.Module, layout: Layout, role: str, layer_indices: list[int]
) -> list[str]:
    """Full names of the modules PEFT adapts in the given blocks: ``role`` is ``attention``,
    ``mlp``, ``attention_mlp``, or ``modules:NAME,NAME`` (names inside a block, matched as the
    whole name or its last parts: ``q_proj`` or ``self_attn.q_proj``)."""
    blocks = find_blocks(model, layout)
    parts: tuple[str, ...] = ()
    if role.startswith("modules:"):
        inside = [n for n, m in blocks.layers[0].named_modules() if n and not list(m.children())]
        for wanted in role.removeprefix("modules:").split(","):
            found = tuple(n for n in inside if n == wanted or n.endswith(f".{wanted}"))
            if not found:
                raise TaskError(
                    f"peft.target {role!r}: no module named {wanted!r} in a {layout.family} "
                    f"block; its modules: {', '.join(inside)}"
                )
            parts += found
    if role in ("attention", "attention_mlp"):
        parts += layout.projections
    if role in ("mlp", "attention_mlp"):
        parts += (*layout.ffn_in, layout.ffn_out)
    if not parts:
        raise ValueError(f"peft target must be attention, mlp or attention_mlp (got {role!r})")
    return [f"{blocks.path}.{i}.{part}" for i in layer_indices for part in dict.fromkeys(parts)]


# ----------------------------------------------------------------------------- helpers
def _group_scores(
    block: nn.Module, layout: Layout, heads: int, kv_heads: int, size: int
) -> torch.Tensor:
    """L1 importance of each key-value group: its query heads, key and value rows, and the
    output columns that read its query heads."""
    group = heads // kv_heads
    if layout.fused_qkv:
        rows = _weight(block.get_submodule(layout.fused_qkv), layout).abs().sum(dim=1)
        q, k, v = (
            rows[: heads * size],
            rows[heads * size : 2 * heads * size],
            rows[2 * heads * size :],
        )
    else:
        assert layout.query and layout.key and layout.value
        q, k, v = (
            _weight(block.get_submodule(p), layout).abs().sum(dim=1)
            for p in (layout.query, layout.key, layout.value)
        )
    out = _weight(block.get_submodule(layout.attn_out), layout).abs().sum(dim=0)
    per_query_head = q.reshape(heads, size).sum(dim=1) + out.reshape(heads, size).sum(dim=1)
    per_kv_head = k.reshape(kv_heads, size).sum(dim=1) + v.reshape(kv_heads, size).sum(dim=1)
    return per_query_head.reshape(kv_heads, group).sum(dim=1) + per_kv_head


def _raw_weight(module: nn.Module) -> torch.Tensor:
    weight = module.weight
    assert isinstance(weight, torch.Tensor)
    return weight.detach()


def _weight(module: nn.Module, layout: Layout) -> torch.Tensor:
    """The weight as ``out x in`` (Conv1D stores ``in x out``)."""
    weight = _raw_weight(module)
    return weight.t() if layout.conv1d else weight


def _out_width(module: nn.Module, layout: Layout) -> int:
    return int(_weight(module, layout).shape[0])


def _keep_outputs(module: nn.Module, rows: torch.Tensor, layout: Layout) -> None:
    weight = _raw_weight(module)
    kept = weight[:, rows] if layout.conv1d else weight[rows]
    module.weight = nn.Parameter(kept.clone())
    bias = getattr(module, "bias", None)
    if bias is not None:
        module.bias = nn.Parameter(bias.detach()[rows].clone())
    for name in ("out_features", "nf"):
        if hasattr(module, name):
            setattr(module, name, len(rows))


def _keep_inputs(module: nn.Module, columns: torch.Tensor, layout: Layout) -> None:
    weight = _raw_weight(module)
    kept = weight[columns] if layout.conv1d else weight[:, columns]
    module.weight = nn.Parameter(kept.clone())
    if hasattr(module, "in_features"):
        setattr(module, "in_features", len(columns))  # noqa: B010 - an int on an nn.Module


def _pad_outputs(module: nn.Module, rows: int, layout: Layout) -> None:
    """Append zero output rows (and zero biases) up to ``rows`` outputs."""
    weight = _weight(module, layout)
    padded = torch.zeros(rows, weight.shape[1], dtype=weight.dtype, device=weight.device)
    padded[: weight.shape[0]] = weight
    module.weight = nn.Parameter(padded.t().contiguous() if layout.conv1d else padded)
    bias = getattr(module, "bias", None)
    if bias is not None:
        grown = torch.zeros(rows, dtype=bias.dtype, device=bias.device)
        grown[: bias.shape[0]] = bias.detach()
        module.bias = nn.Parameter(grown)
    for name in ("out_features", "nf"):
        if hasattr(module, name):
            setattr(module, name, rows)


def _pad_inputs(module: nn.Module, columns: int, layout: Layout) -> None:
    """Append zero input columns up to ``columns`` inputs."""
    weight = _weight(module, layout)
    padded = torch.zeros(weight.shape[0], columns, dtype=weight.dtype, device=weight.device)
    padded[:, : weight.shape[1]] = weight
    module.weight = nn.Parameter(padded.t().contiguous() if layout.conv1d else padded)
    if hasattr(module, "in_features"):
        setattr(module, "in_features", columns)  # noqa: B010 - an int on an nn.Module


def _set_head_counts(attention: nn.Module, heads: int, kv_heads: int, size: int) -> None:
    """Update the counts an attention module reshapes with (the projections are sliced)."""
    for name in HEAD_COUNT_ATTRIBUTES:
        if isinstance(getattr(attention, name, None), int):
            setattr(attention, name, heads)
    for name in KV_COUNT_ATTRIBUTES:
        if isinstance(getattr(attention, name, None), int):
            setattr(attention, name, kv_heads)
    for name in ("all_head_size", "split_size"):
        if isinstance(getattr(attention, name, None), int):
            setattr(attention, name, heads * size)
