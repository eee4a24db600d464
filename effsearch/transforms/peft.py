"""PEFT knobs and how a configuration adapts a pretrained transformer, through peft.

Methods: ``lora``, ``dora`` (LoRA with weight decomposition), ``ia3``, ``loha``, ``lokr`` (peft
adapters); ``head_only`` trains just the task head; ``full`` fine-tunes every weight. Knobs say
which modules (``target``) and which layers (``adapted_fraction``: the top share of encoder
layers, as AutoPEFT searches layer placement) get adapters. The task head is always trained.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from effsearch.models import surgery
from effsearch.models.layouts import Layout
from effsearch.spaces.peft import METHOD


@dataclass(frozen=True)
class Adapted:
    """The model to train and how many of its parameters train."""

    model: nn.Module
    trainable_params: int


def apply(model: nn.Module, config: Mapping[str, Any], layout: Layout, head: str | None) -> Adapted:
    """Wrap ``model`` for fine-tuning as the peft knobs say. ``layout`` says where its blocks
    are; ``head`` names a task head that always trains (None: the model has none to train)."""
    method = config.get("method", "lora")
    if method == "full":
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return Adapted(model, _trainable(model))
    if method == "head_only":
        if head is None:
            raise ValueError("peft.method head_only needs a task head; this model has none")
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name.startswith(f"{head}."))
        return Adapted(model, _trainable(model))
    import peft

    blocks = surgery.find_blocks(model, layout)
    adapted = max(1, math.ceil(float(config.get("adapted_fraction", 1.0)) * len(blocks)))
    chosen = list(range(len(blocks) - adapted, len(blocks)))
    targets = surgery.peft_targets(model, layout, config.get("target", "attention"), chosen)
    common: dict[str, Any] = {"target_modules": targets}
    if head is not None:
        common["modules_to_save"] = [head]
    rank = int(config.get("r", 8))
    # peft annotates alpha as int but only ever computes alpha / r; a float alpha is exact.
    alpha: Any = float(config.get("alpha", 16.0))
    dropout = float(config.get("dropout", 0.0))
    if method in ("lora", "dora"):
        peft_config: Any = peft.LoraConfig(
            r=rank,
            lora_alpha=alpha,
            lora_dropout=dropout,
            use_dora=method == "dora",
            fan_in_fan_out=layout.conv1d,  # GPT-2's Conv1D stores weights in x out
            **common,
        )
    elif method == "loha":
        peft_config = peft.LoHaConfig(r=rank, alpha=alpha, module_dropout=dropout, **common)
    elif method == "lokr":
        peft_config = peft.LoKrConfig(r=rank, alpha=alpha, module_dropout=dropout, **common)
    elif method == "ia3":
        ffn = [f"{blocks.path}.{i}.{layout.ffn_out}" for i in chosen]
        ffn = [name for name in ffn if name in targets]
        peft_config = peft.IA3Config(feedforward_modules=ffn, **common)
    else:
        raise ValueError(f"peft.method must be one of {', '.join(METHOD.choices)}; got {method!r}")
    wrapped = peft.get_peft_model(model, peft_config)
    return Adapted(wrapped, _trainable(wrapped))


def merge(model: nn.Module) -> nn.Module:
    """The plain model with adapters folded into its weights (what gets deployed)."""
    merge_and_unload = getattr(model, "merge_and_unload", None)
    if merge_and_unload is None:
        return model
    merged: nn.Module = merge_and_unload()
    return merged


def _trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
