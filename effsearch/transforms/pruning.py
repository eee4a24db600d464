"""Pruning knobs and how a configuration prunes a model.

- ``magnitude`` zeroes the smallest weights of every conv/linear layer (unstructured: the model
  keeps its shape and runs dense, so latency does not change; ``nonzero_params`` and the
  sparse-stored ``size_mb`` do).
- ``channel`` (CNNs) removes whole output channels/units ranked by L1 norm with torch-pruning,
  which also shrinks every layer that consumes them.
- ``heads``, ``ffn``, ``heads_ffn`` (transformers) remove attention heads and/or FFN
  neurons (``effsearch.models.surgery``, any supported architecture): size, FLOPs and
  latency shrink.
- ``semi_structured_24`` (CUDA) keeps the 2 largest of every 4 weights of each encoder Linear
  and runs them as 2:4 sparse tensors (needs bf16/fp16 weights).
The output layer (last Linear) is never pruned.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from effsearch.spaces.pruning import PRUNING_METHODS

if TYPE_CHECKING:
    from effsearch.models.layouts import Layout

_PRUNABLE = (nn.Conv2d, nn.Linear)


def apply(
    model: nn.Module,
    config: Mapping[str, Any],
    example_input: Any = None,
    layout: Layout | None = None,
) -> nn.Module:
    """Prune ``model`` in place as the active pruning knobs say and return it.

    Magnitude and 2:4 pruning stay re-parametrised (a mask per layer) so that a recovery
    fine-tune keeps the pruned weights at zero; call :func:`finalize` before measuring or
    saving. ``example_input`` (channel) and ``layout`` (heads, ffn: where the model keeps its
    attention and FFN) describe the model.
    """
    from effsearch.models import surgery

    method = config.get("method", "none")
    sparsity = float(config.get("sparsity", 0.0))
    if method not in ("none", *PRUNING_METHODS):
        raise ValueError(f"pruning.method must be one of none, {', '.join(PRUNING_METHODS)}")
    if method == "none" or (sparsity <= 0.0 and method != "semi_structured_24"):
        return model
    if method == "magnitude":
        for module in _prunable_layers(model)[:-1]:
            torch_prune.l1_unstructured(module, name="weight", amount=sparsity)
    elif method == "semi_structured_24":
        for module in _prunable_layers(model)[:-1]:
            if isinstance(module, nn.Linear):
                torch_prune.custom_from_mask(module, "weight", _two_of_four(module.weight))
    elif method == "channel":
        _prune_channels(model, sparsity, example_input)
    if method in ("heads", "ffn", "heads_ffn") and layout is None:
        raise ValueError(f"pruning.method {method} needs the model's layout (a transformer)")
    if method in ("heads", "heads_ffn"):
        assert layout is not None
        surgery.prune_heads(model, layout, sparsity)
    if method in ("ffn", "heads_ffn"):
        assert layout is not None
        surgery.prune_ffn(model, layout, sparsity)
    return model


def to_semi_structured(model: nn.Module) -> int:
    """Store 2:4-pruned Linear weights as CUDA semi-structured sparse tensors; return how many.

    Call after quantization: the kernels need bf16/fp16 weights on a CUDA device.
    """
    from torch.sparse import to_sparse_semi_structured

    converted = 0
    for module in _prunable_layers(model)[:-1]:
        weight = getattr(module, "weight", None)
        if not isinstance(module, nn.Linear) or weight is None:
            continue
        if weight.dtype not in (torch.float16, torch.bfloat16) or not weight.is_cuda:
            raise ValueError(
                "semi_structured_24 runs 2:4 sparse kernels on CUDA with bf16/fp16 weights; "
                f"this model has {weight.dtype} on {weight.device} (set quantization.scheme "
                "to bf16 or fp16 and execution.device to cuda)"
            )
        dense = weight.detach().clone()
        module.weight = nn.Parameter(to_sparse_semi_structured(weight.detach()))
        contiguous_inputs(module)
        _check_same_function(module, dense)
        converted += 1
    return converted


def contiguous_inputs(module: nn.Module) -> None:
    """Hand ``module`` contiguous inputs: sparse and int4 kernels misread strided ones (BERT's
    pooler reads ``hidden[:, 0]``, a strided slice)."""
    module.register_forward_pre_hook(lambda _module, args: tuple(a.contiguous() for a in args))


def _check_same_function(module: nn.Module, dense: torch.Tensor) -> None:
    """Refuse a 2:4 layer that computes something else than the dense layer it replaces."""
    # Strided on purpose: that is how some layers are fed.
    probe = torch.randn(16, 2, dense.shape[1], dtype=dense.dtype, device=dense.device)
    probe = probe.transpose(0, 1)
    expected = torch.nn.functional.linear(probe.contiguous(), dense).float()
    with torch.no_grad():
        got = (module(probe) - (module.bias if module.bias is not None else 0)).float()
    error = float((got - expected).abs().max())
    scale = float(expected.abs().max()) or 1.0
    if error > 0.05 * scale:
        raise ValueError(
            f"2:4 semi-structured kernel disagrees with the dense layer it replaces (max |diff| "
            f"{error:.3g} at output scale {scale:.3g}) on torch {torch.__version__}; "
            "refusing to report a wrong model"
        )


def _two_of_four(weight: torch.Tensor) -> torch.Tensor:
    """Mask keeping the 2 largest-magnitude weights of every 4 consecutive inputs."""
    rows, cols = weight.shape
    groups = weight.detach().abs().reshape(rows, cols // 4, 4)
    keep = torch.topk(groups, 2, dim=-1).indices
    mask = torch.zeros_like(groups).scatter_(-1, keep, 1.0)
    return mask.reshape(rows, cols)


def finalize(model: nn.Module) -> nn.Module:
    """Make magnitude pruning permanent (drop masks, keep zeros) so the model saves plainly."""
    for module in model.modules():
        if torch_prune.is_pruned(module) and hasattr(module, "weight_orig"):
            torch_prune.remove(module, "weight")
    return model


def _prunable_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, _PRUNABLE)]


def _prune_channels(model: nn.Module, sparsity: float, example_input: Any) -> nn.Module:
    import torch_pruning as tp

    layers = _prunable_layers(model)
    output_layer = layers[-1]
    pruner = tp.pruner.MagnitudePruner(
        model,
        example_input,
        importance=tp.importance.MagnitudeImportance(p=1),
        pruning_ratio=sparsity,
        ignored_layers=[output_layer],
    )
    pruner.step()
    return model
