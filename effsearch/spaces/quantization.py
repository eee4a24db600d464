"""Quantization knobs and how a configuration quantizes a model for CPU inference.

``bf16`` casts weights and activations to bfloat16. ``int8_dynamic`` stores Linear weights as
int8 and quantizes activations on the fly (torch.ao ``quantize_dynamic``; it covers Linear
layers only, convolutions stay fp32).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from effsearch.spaces.knobs import KnobDecl

SCHEME = KnobDecl.choice(
    "scheme", ("none", "bf16", "int8_dynamic"), "none", "numeric format of the deployed model"
)

KNOBS = (SCHEME,)


@dataclass(frozen=True)
class Quantized:
    """A quantized model and the dtype its inputs must have."""

    model: nn.Module
    input_dtype: torch.dtype
    note: str = ""


def apply(model: nn.Module, config: Mapping[str, Any]) -> Quantized:
    """Return ``model`` converted as ``config['scheme']`` says (the float model is not reused)."""
    scheme = config.get("scheme", "none")
    model = model.eval()
    if scheme == "none":
        return Quantized(model, torch.float32)
    if scheme == "bf16":
        return Quantized(model.to(torch.bfloat16), torch.bfloat16)
    if scheme == "int8_dynamic":
        with warnings.catch_warnings():
            # torch.ao.quantization is deprecated in favour of torchao; it is the path that runs
            # on this torch without extra packages.
            warnings.simplefilter("ignore")
            quantized = torch.ao.quantization.quantize_dynamic(
                model, {nn.Linear}, dtype=torch.qint8
            )
        return Quantized(
            quantized,
            torch.float32,
            note="int8_dynamic quantizes Linear layers only (torch.ao); convolutions stay fp32",
        )
    raise ValueError(f"quantization.scheme must be none, bf16 or int8_dynamic; got {scheme!r}")
