"""Runtime knobs: the engine a trial's model is measured on, and which quantization schemes
and pruning methods each engine runs (how a model is converted: effsearch.transforms.runtime).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from effsearch.spaces.knobs import KnobDecl

ENGINE_DEVICES: dict[str, tuple[str, ...]] = {
    "eager": ("cpu", "cuda"),
    "compile": ("cpu", "cuda"),
    "onnxruntime": ("cpu",),
}

ENGINE = KnobDecl.choice(
    "engine",
    tuple(ENGINE_DEVICES),
    "eager",
    "what runs the deployed model: torch eager, torch.compile, or ONNX Runtime",
    devices=ENGINE_DEVICES,
)

KNOBS = (ENGINE,)

ONNX_FILE = "model.onnx"
"""The ONNX graph's file name, in an engine's folder and in an exported bundle."""

ONNXRUNTIME_SCHEMES = ("none", "int8_dynamic", "int8_static")
"""What ONNX Runtime quantizes itself (its ``quantize_dynamic`` / ``quantize_static``)."""

_WHY_NOT: dict[tuple[str, str], str] = {
    ("onnxruntime", "bf16"): "a bf16 graph does not run on ONNX Runtime's CPU provider",
    ("onnxruntime", "fp16"): "ONNX Runtime's CPU provider runs few fp16 kernels",
    ("onnxruntime", "int8_dynamic_fbgemm"): "it is torch.ao's fbgemm kernel, a torch format",
    ("onnxruntime", "int8_weight_only"): "it is a torchao format ONNX cannot hold",
    ("onnxruntime", "int4_weight_only"): "it is a torchao format ONNX cannot hold",
}


def engine_of(config: Mapping[str, Mapping[str, Any]]) -> str:
    """The configuration's ``runtime.engine`` (``eager`` when the task has no runtime group)."""
    return str(config.get("runtime", {}).get("engine", "eager"))


def config_incompatibility(config: Mapping[str, Mapping[str, Any]]) -> str:
    """:func:`incompatibility` of a configuration's engine, scheme and pruning method."""
    return incompatibility(
        engine_of(config),
        str(config.get("quantization", {}).get("scheme", "none")),
        str(config.get("pruning", {}).get("method", "none")),
    )


def incompatibility(engine: str, scheme: str, pruning_method: str = "none") -> str:
    """Why ``engine`` cannot run a model quantized as ``scheme`` and pruned by
    ``pruning_method`` ('' when it can). Known from the configuration alone, so a trial that
    asks for it is rejected before training."""
    if engine != "onnxruntime" and scheme == "int8_static":
        return (
            f"quantization.scheme int8_static is ONNX Runtime's static quantization; "
            f"runtime.engine {engine} cannot run it (use onnxruntime)"
        )
    if engine == "onnxruntime" and scheme not in ONNXRUNTIME_SCHEMES:
        why = _WHY_NOT.get((engine, scheme), "ONNX Runtime has no such scheme")
        return (
            f"runtime.engine onnxruntime cannot run quantization.scheme {scheme} ({why}); it "
            f"runs {', '.join(ONNXRUNTIME_SCHEMES)}"
        )
    if engine == "onnxruntime" and pruning_method == "semi_structured_24":
        return "runtime.engine onnxruntime cannot run 2:4 semi-structured kernels (CUDA torch)"
    return ""
