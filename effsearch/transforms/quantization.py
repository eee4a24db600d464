"""Quantization knobs and how a configuration quantizes a model for inference.

Schemes (what runs where is in ``SCHEME_DEVICES``; a recipe asking for a scheme its device
cannot run is refused when it is validated):
- ``bf16`` / ``fp16``: weights and activations in half precision (fp16 is slow on most CPUs).
- ``int8_dynamic``: int8 weights, activations quantized on the fly: torchao's
  ``Int8DynamicActivationInt8WeightConfig`` (the deprecated torch.ao path only if torchao is
  missing).
- ``int8_dynamic_fbgemm``: the same idea through torch.ao's deprecated eager
  ``quantize_dynamic`` and its fbgemm kernels; on x86 CPUs it is several times faster than
  torchao's path today (see benchmarks/), so it stays on offer.
- ``int8_weight_only`` / ``int4_weight_only``: torchao weight-only; on CPU they shrink size,
  not latency; int4 needs CUDA.
- ``int8_static``: ONNX Runtime's calibrated static quantization; only with ``runtime.engine:
  onnxruntime`` (effsearch.transforms.runtime), never here.
Only Linear layers are quantized by the torch int schemes; convolutions stay in float.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from effsearch.spaces.quantization import SCHEME_DEVICES


@dataclass(frozen=True)
class Quantized:
    """A quantized model, the dtype its float inputs must have, and how it was made."""

    model: nn.Module
    input_dtype: torch.dtype
    note: str = ""


def apply(model: nn.Module, config: Mapping[str, Any], device: str = "cpu") -> Quantized:
    """Return ``model`` converted as ``config['scheme']`` says (``model`` may be changed)."""
    scheme = config.get("scheme", "none")
    kind = device.split(":")[0]
    if scheme not in SCHEME_DEVICES:
        raise ValueError(f"quantization.scheme must be one of {', '.join(SCHEME_DEVICES)}")
    if kind not in SCHEME_DEVICES[scheme]:
        raise ValueError(f"quantization.scheme {scheme!r} does not run on {device}")
    if scheme == "int8_static":
        raise ValueError(
            "quantization.scheme int8_static is ONNX Runtime's; torch cannot run it (use "
            "runtime.engine onnxruntime)"
        )
    model = model.eval()
    if scheme == "none":
        return Quantized(model, torch.float32)
    if scheme in ("bf16", "fp16"):
        dtype = torch.bfloat16 if scheme == "bf16" else torch.float16
        return Quantized(model.to(dtype), dtype)
    if scheme == "int8_dynamic_fbgemm":
        return Quantized(_torch_ao_dynamic(model), torch.float32, _FBGEMM_NOTE)
    return _torchao(model, scheme)


_FBGEMM_NOTE = "int8_dynamic_fbgemm: torch.ao quantize_dynamic (deprecated), Linear layers only"


def _torch_ao_dynamic(model: nn.Module) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated; we say so
        quantized: nn.Module = torch.ao.quantization.quantize_dynamic(
            model, {nn.Linear}, dtype=torch.qint8
        )
    return quantized


def _torchao(model: nn.Module, scheme: str) -> Quantized:
    try:
        with _quiet():
            import torchao.quantization  # noqa: F401 - only whether it is there
    except ImportError:
        if scheme != "int8_dynamic":
            raise
        note = "int8_dynamic: torchao is not installed; used torch.ao quantize_dynamic"
        return Quantized(_torch_ao_dynamic(model), torch.float32, note)
    torchao_quantize(model, scheme)
    if scheme == "int4_weight_only":
        from effsearch.transforms.pruning import contiguous_inputs

        for module in model.modules():
            if isinstance(module, nn.Linear):
                contiguous_inputs(module)
    return Quantized(model, torch.float32, f"{scheme}: torchao quantize_, Linear layers only")


def torchao_quantize(
    model: nn.Module, scheme: str, only: Callable[[nn.Module, str], bool] | None = None
) -> None:
    """torchao's ``quantize_`` with the scheme's config, on every Linear (or those ``only``
    accepts: ``only(module, full name)``)."""
    with _quiet():
        from torchao.quantization import (
            Int4WeightOnlyConfig,
            Int8DynamicActivationInt8WeightConfig,
            Int8WeightOnlyConfig,
            quantize_,
        )

        configs = {
            "int8_dynamic": Int8DynamicActivationInt8WeightConfig,
            "int8_weight_only": Int8WeightOnlyConfig,
            "int4_weight_only": Int4WeightOnlyConfig,
        }
        if only is None:
            quantize_(model, configs[scheme]())
        else:
            quantize_(
                model,
                configs[scheme](),
                filter_fn=lambda m, fqn: isinstance(m, nn.Linear) and only(m, fqn),
            )


def safe_load_globals() -> list[type]:
    """The torchao tensor classes our int schemes store weights in, for
    ``torch.load(weights_only=True)`` of a saved quantized model (torch allows none of them by
    default); empty without torchao."""
    try:
        with _quiet():
            import torchao.quantization as torchao_quantization
    except ImportError:
        return []
    names = ("Int8Tensor", "Int4Tensor", "Int4PlainInt32Tensor", "Int4TilePackedTo4dTensor")
    return [getattr(torchao_quantization, n) for n in names if hasattr(torchao_quantization, n)]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # torchao announces optional kernels it cannot load on import; that is not news per trial.
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield
