"""Quantization knobs: the schemes, and the devices each runs on (how they apply:
effsearch.transforms.quantization)."""

from __future__ import annotations

from effsearch.spaces.knobs import KnobDecl

SCHEME_DEVICES: dict[str, tuple[str, ...]] = {
    "none": ("cpu", "cuda"),
    "bf16": ("cpu", "cuda"),
    "fp16": ("cpu", "cuda"),
    "int8_dynamic": ("cpu", "cuda"),
    "int8_dynamic_fbgemm": ("cpu",),
    "int8_weight_only": ("cpu", "cuda"),
    "int4_weight_only": ("cuda",),
    "int8_static": ("cpu",),  # ONNX Runtime's, calibrated: only with runtime.engine onnxruntime
}

SCHEME = KnobDecl.choice(
    "scheme",
    tuple(SCHEME_DEVICES),
    "none",
    "numeric format of the deployed model",
    devices=SCHEME_DEVICES,
)

KNOBS = (SCHEME,)
