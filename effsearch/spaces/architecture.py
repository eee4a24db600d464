"""Architecture knobs: how wide and how deep the task's model is built."""

from __future__ import annotations

from effsearch.spaces.knobs import KnobDecl

WIDTH_MULT = KnobDecl.float(
    "width_mult", 0.0625, 4.0, 1.0, "multiplies every layer's channel/unit count"
)
DEPTH = KnobDecl.int("depth", 1, 4, 3, "number of convolution blocks", log_ok=False)

KNOBS = (WIDTH_MULT, DEPTH)


def scaled(base: int, width_mult: float, minimum: int = 2) -> int:
    """``base`` channels scaled by ``width_mult``, never below ``minimum``."""
    return max(minimum, round(base * width_mult))


DROP_LAYERS = KnobDecl.int(
    "drop_layers", 0, 48, 0, "top encoder layers removed (layer dropping)", log_ok=False
)

RESOLUTION = KnobDecl.int(
    "resolution", 8, 1024, 32, "input image side in pixels (trained and measured at it)"
)
