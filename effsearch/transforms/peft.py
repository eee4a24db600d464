"""PEFT knobs and how a configuration adapts a pretrained transformer, through peft.

Methods: ``lora``, ``dora`` (LoRA with weight decomposition), ``ia3``, ``loha``, ``lokr`` (peft
adapters); ``head_only`` trains just the task head; ``full`` fine-tunes every weight. Knobs say
which modules (``target``) and which layers (``adapted_fraction``: the top share of encoder
layers, as AutoPEFT searches layer placement) get adapters. The task head is always trained.
"""

from __future__ import annotations

import math
import warnings
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
    note: str = ""


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
    note = ""
    if method == "qlora":
        quantized = _quantize_base(model, targets)
        note = (
            f"qlora: LoRA trained on {quantized} int8 weight-only base layers (torchao), merged "
            "into their dequantized weights"
            if quantized
            else "qlora: no Linear base layer to quantize (GPT-2's Conv1D); trained as LoRA"
        )
    rank = int(config.get("r", 8))
    # peft annotates alpha as int but only ever computes alpha / r; a float alpha is exact.
    alpha: Any = float(config.get("alpha", 16.0))
    dropout = float(config.get("dropout", 0.0))
    if method in ("lora", "dora", "qlora"):
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
    with warnings.catch_warnings():
        # peft warns that it cannot re-quantize after merging: ``merge`` folds into float
        warnings.filterwarnings("ignore", message="TorchaoLoraLinear was instantiated")
        wrapped = peft.get_peft_model(model, peft_config)
    return Adapted(wrapped, _trainable(wrapped), note)


def merge(model: nn.Module) -> nn.Module:
    """The plain model with adapters folded into its weights (what gets deployed).

    Adapters trained on a quantized base (``qlora``) fold into its dequantized weights: the
    model leaves here in float, to be pruned and quantized as the trial's knobs say."""
    merge_and_unload = getattr(model, "merge_and_unload", None)
    if merge_and_unload is None:
        return model
    quantized = [
        m
        for m in model.modules()
        if hasattr(m, "base_layer")
        and hasattr(m, "get_delta_weight")
        and hasattr(getattr(m.base_layer, "weight", None), "dequantize")
    ]
    if quantized:
        import torch

        with torch.no_grad():
            for layer in quantized:
                lora: Any = layer  # peft's LoRA layer around the quantized base
                delta = sum(lora.get_delta_weight(name) for name in lora.active_adapters)
                weight = lora.base_layer.weight.dequantize() + delta
                lora.base_layer.weight = nn.Parameter(weight, requires_grad=False)
        unloaded: nn.Module = model.unload()  # type: ignore[operator]
        return unloaded
    merged: nn.Module = merge_and_unload()
    return merged


def _quantize_base(model: nn.Module, targets: list[str]) -> int:
    """The adapted Linear layers' base weights as torchao int8 weight-only tensors (frozen);
    returns how many."""
    from effsearch.transforms.quantization import torchao_quantize

    wanted = {t for t in targets if isinstance(model.get_submodule(t), nn.Linear)}
    if wanted:
        torchao_quantize(model, "int8_weight_only", lambda module, name: name in wanted)
    return len(wanted)


def _trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
