"""Pruning knobs and how a configuration prunes a model.

``magnitude`` zeroes the smallest weights of every conv/linear layer (unstructured: the model
keeps its shape, so dense size and latency do not change; ``nonzero_params`` does).
``channel`` removes whole output channels/units ranked by L1 norm with torch-pruning, which
also shrinks every layer that consumes them: the model gets physically smaller and faster.
The classifier's output layer is never pruned.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from effsearch.spaces.knobs import KnobDecl

PRUNING_METHODS = ("magnitude", "channel")

METHOD = KnobDecl.choice("method", ("none", *PRUNING_METHODS), "none", "what to remove")
SPARSITY = KnobDecl.float(
    "sparsity",
    0.0,
    0.95,
    0.5,
    "fraction of weights (magnitude) or channels (channel) removed per layer",
    when={"method": PRUNING_METHODS},
)
FINETUNE_EPOCHS = KnobDecl.int(
    "finetune_epochs",
    0,
    100,
    0,
    "recovery training after pruning (magnitude keeps pruned weights at zero)",
    when={"method": PRUNING_METHODS},
    log_ok=False,
)

KNOBS = (METHOD, SPARSITY, FINETUNE_EPOCHS)

_PRUNABLE = (nn.Conv2d, nn.Linear)


def apply(model: nn.Module, config: Mapping[str, Any], example_input: torch.Tensor) -> nn.Module:
    """Prune ``model`` in place as the active pruning knobs say and return it.

    Magnitude pruning stays re-parametrised (a mask per layer) so that a recovery fine-tune keeps
    the pruned weights at zero; call :func:`finalize` before measuring or saving.
    """
    method = config.get("method", "none")
    sparsity = float(config.get("sparsity", 0.0))
    if method == "none" or sparsity <= 0.0:
        return model
    if method == "magnitude":
        for module in _prunable_layers(model):
            torch_prune.l1_unstructured(module, name="weight", amount=sparsity)
        return model
    if method == "channel":
        return _prune_channels(model, sparsity, example_input)
    raise ValueError(
        f"pruning.method must be one of none, {', '.join(PRUNING_METHODS)}; got {method!r}"
    )


def finalize(model: nn.Module) -> nn.Module:
    """Make magnitude pruning permanent (drop masks, keep zeros) so the model saves plainly."""
    for module in model.modules():
        if torch_prune.is_pruned(module) and hasattr(module, "weight_orig"):
            torch_prune.remove(module, "weight")
    return model


def _prunable_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, _PRUNABLE)]


def _prune_channels(model: nn.Module, sparsity: float, example_input: torch.Tensor) -> nn.Module:
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
